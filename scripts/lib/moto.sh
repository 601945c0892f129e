# Shared by scripts/test, scripts/demo and scripts/bench-inventory (sourced,
# not run): the local Python venv with the AWS emulator, and a moto server on
# a free loopback port that stops when the calling script exits.

# Pinned: the tests name moto's gaps against this version's behaviour.
MOTO_SPEC='moto[server]==5.2.5'
# Same botocore line as moto 5.2.5's, so installing it changes nothing else.
AWSCLI_SPEC='awscli==1.46.3'
# What the output-consumer tests run: `kmsrot iac --format sarif` validated
# against the vendored SARIF 2.1.0 schema (tests/it/iac.rs), the OCSF findings
# against the vendored OCSF JSON Schema, and the Parquet files read by a reader
# that is not polars (tests/it/hostile.rs). botocore, which validates the ASFF
# bodies, comes with moto; this jsonschema is the one moto[server] pulls in.
# sqlglot and duckdb also prove the meaning of the SQL kmsrot sends to Athena
# (tests/it/trail_athena.rs, tests/it/support/athena_duckdb.py, which checks
# these exact versions): sqlglot from 30.25 writes DuckDB's newer LAMBDA
# syntax, which DuckDB 1.1 does not read; 30.22 writes `x -> ...`.
TEST_TOOLS_SPEC=('jsonschema==4.26.0' 'duckdb==1.1.3' 'sqlglot==30.22.0')

_python_bin() {
    for p in python3.11 python3 python; do
        if command -v "$p" >/dev/null 2>&1; then
            echo "$p"
            return 0
        fi
    done
    echo "no python3 found; install Python 3.11+ with pip" >&2
    return 1
}

# venv_install SPEC...: creates .venv if needed and pip-installs into it.
venv_install() {
    local py
    py="$(_python_bin)"
    if [[ ! -x .venv/bin/python ]]; then
        # Debian's python3 may lack ensurepip (python3-venv); then make the
        # venv without pip and install into it with the system pip.
        "$py" -m venv .venv 2>/dev/null || "$py" -m venv --without-pip --clear .venv
    fi
    if [[ -x .venv/bin/pip ]]; then
        .venv/bin/pip install --quiet "$@"
    else
        "$py" -m pip --python .venv/bin/python install --quiet "$@"
    fi
}

# ensure_moto: .venv/bin/moto_server exists afterwards.
ensure_moto() {
    if [[ ! -x .venv/bin/moto_server ]]; then
        echo "installing $MOTO_SPEC into .venv (first run only)" >&2
        venv_install "$MOTO_SPEC"
    fi
}

# ensure_awscli: .venv/bin/aws exists afterwards.
ensure_awscli() {
    if [[ ! -x .venv/bin/aws ]]; then
        echo "installing $AWSCLI_SPEC into .venv (first run only)" >&2
        venv_install "$AWSCLI_SPEC"
    fi
}

# ensure_test_tools: jsonschema, duckdb and sqlglot importable from
# .venv/bin/python, at the pinned versions.
ensure_test_tools() {
    if ! .venv/bin/python -c 'import jsonschema, duckdb, sqlglot' >/dev/null 2>&1 \
        || [[ "$(.venv/bin/python -c 'import duckdb, sqlglot; print(duckdb.__version__, sqlglot.__version__)' 2>/dev/null)" != "1.1.3 30.22.0" ]]; then
        echo "installing ${TEST_TOOLS_SPEC[*]} into .venv (first run only)" >&2
        venv_install "${TEST_TOOLS_SPEC[@]}"
    fi
}

# ensure_chromium: /usr/bin/chromium exists afterwards (the report's browser
# test fails, never skips, without it).
ensure_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        return 0
    fi
    echo "installing Debian's chromium for the report's browser test (first run only)" >&2
    local sudo=()
    if [[ $(id -u) != 0 ]]; then sudo=(sudo); fi
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
}

free_port() {
    .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_moto [LOGFILE]: starts moto_server on a free port, waits until it
# listens, sets MOTO_PID and MOTO_URL, and stops it when the script exits.
start_moto() {
    local log="${1:-/dev/null}" port
    port="$(free_port)"
    .venv/bin/moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
    MOTO_PID=$!
    MOTO_URL="http://127.0.0.1:$port"
    trap 'stop_moto' EXIT
    for _ in $(seq 1 300); do
        if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$MOTO_PID" 2>/dev/null; then
            echo "moto_server exited before listening (log: $log)" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "moto_server did not listen on $port within 30 s" >&2
    return 1
}

stop_moto() {
    if [[ -n "${MOTO_PID:-}" ]]; then
        kill "$MOTO_PID" 2>/dev/null || true
        wait "$MOTO_PID" 2>/dev/null || true
        MOTO_PID=
    fi
}

# Fake credentials, and no real profile or config, for anything run against
# the emulator.
emulator_env() {
    export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
    unset AWS_SESSION_TOKEN AWS_PROFILE AWS_DEFAULT_PROFILE
    export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
    export AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1
}
