//! A key's grants (ListGrants): who else may use it, and for what. Read live
//! only; bundles do not keep them.

use serde::Serialize;

use crate::aws::ErrorInfo;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Grant {
    pub grant_id: String,
    pub grantee: Option<String>,
    pub operations: Vec<String>,
}

/// Every grant on `key_arn`, following the pages to the end. The first
/// failed page fails the whole list: a partial list of grants would read as
/// "nobody else can use this key".
pub async fn list(client: &aws_sdk_kms::Client, key_arn: &str) -> Result<Vec<Grant>, ErrorInfo> {
    let mut grants = Vec::new();
    let mut pages = client.list_grants().key_id(key_arn).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| ErrorInfo::from_sdk(&e))?;
        grants.extend(page.grants().iter().map(|g| {
            Grant {
                grant_id: g.grant_id().unwrap_or("-").to_string(),
                grantee: g.grantee_principal().map(str::to_string),
                operations: g
                    .operations()
                    .iter()
                    .map(|o| o.as_str().to_string())
                    .collect(),
            }
        }));
    }
    Ok(grants)
}
