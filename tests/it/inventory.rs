//! `kmsrot inventory` against moto.

use crate::support::{read_json, run, Moto};

#[tokio::test(flavor = "multi_thread")]
async fn eligible_key_with_rotation_on() {
    let moto = Moto::start();
    let kms = moto.kms("us-east-1").await;
    let key = kms
        .create_key()
        .description("payments")
        .send()
        .await
        .unwrap();
    let id = key.key_metadata().unwrap().key_id().to_string();
    kms.enable_key_rotation().key_id(&id).send().await.unwrap();

    let out = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run(moto
        .kmsrot()
        .args(["inventory", "--region", "us-east-1", "--out"])
        .arg(out.path()));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    let keys = read_json(&out.path().join("keys.json"));
    let k = &keys[0];
    assert_eq!(k["key_id"], id.as_str());
    assert_eq!(k["eligibility"], "eligible");
    assert_eq!(k["rotation_enabled"], true);
    // moto 5.2 returns no RotationPeriodInDays: the column stays empty
    // rather than being guessed as AWS's default of 365.
    assert!(k["rotation_period_days"].is_null());
}
