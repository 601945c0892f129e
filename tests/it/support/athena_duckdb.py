#!/usr/bin/env python3
"""Runs the SQL kmsrot sends to Athena on a real engine, to prove its meaning.

moto's Athena records queries and runs none, so tests/it/trail_athena.rs
captures the SQL kmsrot sent, and this script:

  check SQL_FILE...
      parses each statement as Trino (Athena engine v3) with sqlglot and fails
      when sqlglot does not know a function (it would pass it through
      untranslated) or when a function is not in TRINO_FUNCTIONS, the ones
      whose translation to DuckDB is checked below; then runs SEMANTICS: each
      Trino expression kmsrot relies on, on edge values, translated to DuckDB,
      against the result Trino's documentation gives.

  run --archive DIR --table DATABASE.TABLE --sql SQL_FILE --out JSON_FILE
      builds a DuckDB table in the shape of AWS's documented CloudTrail table
      ("Create the table for CloudTrail logs in Athena using partition
      projection": lower-case columns, useridentity and resources as structs,
      requestparameters/responseelements/additionaleventdata/
      serviceeventdetails as JSON text) from every delivery file under
      DIR/AWSLogs/[o-ORG/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/, with the
      partition columns account, region and timestamp (yyyy/MM/dd) taken
      from each file's path and Athena's "$path" pseudo-column; translates
      the statement to DuckDB and writes the rows as Athena returns them
      (every value a string, NULL as null): {"columns": [...], "rows": [...]}.

The JSON SerDe is emulated as Athena documents it: keys matched without
regard to case, a nested object or array in a string column kept as its JSON
text, a scalar in a string column as its text.
"""

import argparse
import gzip
import json
import os
import re
import sys

import duckdb
import sqlglot
from sqlglot import exp

# Pinned in scripts/lib/moto.sh (ensure_sql_engines); checked so a result is
# never produced by another version than the one the README names.
SQLGLOT_VERSION = "30.22.0"
DUCKDB_VERSION = "1.1.3"

# AWS's DDL (partition projection page), as types: "s" a string column,
# ("struct", [(name, type)...]), ("array", type), ("map",) map<string,string>.
S = "s"
USERIDENTITY = (
    "struct",
    [
        ("type", S),
        ("principalid", S),
        ("arn", S),
        ("accountid", S),
        ("invokedby", S),
        ("accesskeyid", S),
        ("username", S),
        ("onbehalfof", ("struct", [("userid", S), ("identitystorearn", S)])),
        (
            "sessioncontext",
            (
                "struct",
                [
                    ("attributes", ("struct", [("mfaauthenticated", S), ("creationdate", S)])),
                    (
                        "sessionissuer",
                        (
                            "struct",
                            [
                                ("type", S),
                                ("principalid", S),
                                ("arn", S),
                                ("accountid", S),
                                ("username", S),
                            ],
                        ),
                    ),
                    ("ec2roledelivery", S),
                    (
                        "webidfederationdata",
                        ("struct", [("federatedprovider", S), ("attributes", ("map",))]),
                    ),
                ],
            ),
        ),
    ],
)
COLUMNS = [
    ("eventversion", S),
    ("useridentity", USERIDENTITY),
    ("eventtime", S),
    ("eventsource", S),
    ("eventname", S),
    ("awsregion", S),
    ("sourceipaddress", S),
    ("useragent", S),
    ("errorcode", S),
    ("errormessage", S),
    ("requestparameters", S),
    ("responseelements", S),
    ("additionaleventdata", S),
    ("requestid", S),
    ("eventid", S),
    ("readonly", S),
    ("resources", ("array", ("struct", [("arn", S), ("accountid", S), ("type", S)]))),
    ("eventtype", S),
    ("apiversion", S),
    ("recipientaccountid", S),
    ("serviceeventdetails", S),
    ("sharedeventid", S),
    ("vpcendpointid", S),
    ("vpcendpointaccountid", S),
    ("eventcategory", S),
    (
        "addendum",
        (
            "struct",
            [("reason", S), ("updatedfields", S), ("originalrequestid", S), ("originaleventid", S)],
        ),
    ),
    ("sessioncredentialfromconsole", S),
    ("edgedevicedetails", S),
    ("tlsdetails", ("struct", [("tlsversion", S), ("ciphersuite", S), ("clientprovidedhostheader", S)])),
]
# Partition columns (an organization table's projection) and the pseudo-column.
PARTITIONS = [("account", S), ("region", S), ("timestamp", S)]
PATH_COLUMN = "$path"

LAYOUT = re.compile(
    r"AWSLogs/(?:o-[a-z0-9]+/)?(\d{12})/CloudTrail/([a-z0-9-]+)/(\d{4})/(\d{2})/(\d{2})/[^/]+\.json(?:\.gz)?$"
)

# The Trino functions kmsrot's Athena SQL may use: each is translated by
# sqlglot to DuckDB, and SEMANTICS checks the translation on edge values.
TRINO_FUNCTIONS = {
    "REGEXP_LIKE",
    "JSON_EXTRACT",
    "JSON_EXTRACT_SCALAR",
    "JSON_FORMAT",
    "FILTER",
    "ELEMENT_AT",
    "COALESCE",
    "CONCAT",
    "SUBSTR",
}

KEY_ARN_RE = r"\Aarn:aws[^:]*:kms:[^:]+:[0-9]{12}:key/[A-Za-z0-9-]{1,64}\z"
KEY = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def json_string(doc, field):
    """The expression kmsrot writes for "the member when it is a JSON string"."""
    return (
        f"CASE WHEN json_format(json_extract({doc}, '$.{field}')) LIKE '\"%' "
        f"THEN json_extract_scalar({doc}, '$.{field}') END"
    )


# (Trino expression, the result Trino gives, from its documentation). Each
# is the form kmsrot's SQL uses, on the values that tell engines apart.
SEMANTICS = [
    # A member that is a JSON string, and the ones that are not.
    (json_string("'{\"keyId\":\"k-1\"}'", "keyId"), "k-1"),
    (json_string(r"""'{"keyId":"a\"b"}'""", "keyId"), 'a"b'),
    (json_string("'{\"keyId\":5}'", "keyId"), None),
    (json_string("'{\"keyId\":true}'", "keyId"), None),
    (json_string("'{\"keyId\":null}'", "keyId"), None),
    (json_string("'{\"keyId\":{\"a\":1}}'", "keyId"), None),
    (json_string("'{\"keyId\":[\"x\"]}'", "keyId"), None),
    (json_string("'{\"other\":1}'", "keyId"), None),
    (json_string("'[1,2]'", "keyId"), None),
    (json_string("CAST(NULL AS VARCHAR)", "keyId"), None),
    # json_format of a member: its JSON text (numbers as written).
    ("json_format(json_extract('{\"p\":180}', '$.p'))", "180"),
    ("json_format(json_extract('{\"p\":\"180\"}', '$.p'))", '"180"'),
    ("json_format(json_extract('{\"q\":1}', '$.p'))", None),
    # Anchored regexes: \A and \z, never line anchors.
    (f"regexp_like('{KEY}', '{KEY_ARN_RE}')", True),
    (f"regexp_like('x' || chr(10) || '{KEY}', '{KEY_ARN_RE}')", False),
    (f"regexp_like('{KEY}' || chr(10), '{KEY_ARN_RE}')", False),
    (f"regexp_like('{KEY}/x', '{KEY_ARN_RE}')", False),
    ("regexp_like('arn:aws:kms:us-east-1:111122223333:alias/app', '" + KEY_ARN_RE + "')", False),
    (
        "regexp_like('2025-03-02T10:00:00Z', '\\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\\z')",
        True,
    ),
    (
        "regexp_like('2025-03-02T10:00:00.123Z', '\\A[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\\z')",
        False,
    ),
    # The first element of a filtered array of rows, or NULL.
    (
        "element_at(filter(ARRAY[CAST(ROW('a', 'T') AS ROW(arn VARCHAR, type VARCHAR)), "
        "CAST(ROW('b', 'AWS::KMS::Key') AS ROW(arn VARCHAR, type VARCHAR))], "
        "r -> r.type = 'AWS::KMS::Key'), 1).arn",
        "b",
    ),
    (
        "element_at(filter(ARRAY[CAST(ROW('a', 'T') AS ROW(arn VARCHAR, type VARCHAR))], "
        "r -> r.type = 'AWS::KMS::Key'), 1).arn",
        None,
    ),
    (
        "element_at(filter(CAST(NULL AS ARRAY(ROW(arn VARCHAR, type VARCHAR))), "
        "r -> r.type = 'AWS::KMS::Key'), 1).arn",
        None,
    ),
    ("coalesce(NULL, '', 'x')", ""),
    ("concat('2025', '/', '03', '/', '01')", "2025/03/01"),
    ("substr('2025-03-01T10:00:00Z', 1, 10)", "2025-03-01"),
    # Text order of CloudTrail times is time order; '' is not an error code.
    ("'2025-03-02T00:00:00Z' BETWEEN '2025-03-02T00:00:00Z' AND '2025-03-04T23:59:59Z'", True),
    ("'2025-03-05T00:00:00Z' BETWEEN '2025-03-02T00:00:00Z' AND '2025-03-04T23:59:59Z'", False),
    ("'' <> ''", False),
    ("CAST(NULL AS VARCHAR) <> ''", None),
]


def duck_type(t):
    if t == S:
        return "VARCHAR"
    if t[0] == "map":
        return "MAP(VARCHAR, VARCHAR)"
    if t[0] == "array":
        return duck_type(t[1]) + "[]"
    fields = ", ".join(f'"{n}" {duck_type(ft)}' for n, ft in t[1])
    return f"STRUCT({fields})"


def serde(value, t):
    """A JSON value as Athena's JSON SerDe reads it into a column of type t."""
    if value is None:
        return None
    if t == S:
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if t[0] == "map":
        if not isinstance(value, dict):
            return None
        return {str(k): serde(v, S) for k, v in value.items()}
    if t[0] == "array":
        if not isinstance(value, list):
            return None
        return [serde(v, t[1]) for v in value]
    if not isinstance(value, dict):
        return None
    lower = {}
    for k, v in value.items():
        lower.setdefault(k.lower(), v)
    return {n: serde(lower.get(n), ft) for n, ft in t[1]}


def records(path):
    data = open(path, "rb").read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    doc = json.loads(data)
    return doc["Records"]


def build_table(con, archive, table):
    cols = COLUMNS + PARTITIONS + [(PATH_COLUMN, S)]
    database, tname = table.split(".", 1)
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{database}"')
    ddl = ", ".join(f'"{n}" {duck_type(t)}' for n, t in cols)
    con.execute(f'CREATE TABLE "{database}"."{tname}" ({ddl})')
    rows = []
    files = 0
    for root, _, names in os.walk(archive):
        for name in sorted(names):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, archive).replace(os.sep, "/")
            m = LAYOUT.search(rel)
            if not m:
                continue
            files += 1
            account, region, y, mo, d = m.groups()
            for r in records(full):
                lower = {}
                for k, v in r.items():
                    lower.setdefault(k.lower(), v)
                row = {n: serde(lower.get(n), t) for n, t in COLUMNS}
                row.update(
                    {
                        "account": account,
                        "region": region,
                        "timestamp": f"{y}/{mo}/{d}",
                        PATH_COLUMN: "s3://trail-bucket/" + rel,
                    }
                )
                rows.append(row)
    if not files:
        sys.exit(f"athena_duckdb: no delivery file under {archive}/AWSLogs/")
    ndjson = os.path.join(archive, ".duckdb-rows.ndjson")
    with open(ndjson, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    types = "{" + ", ".join(f"'{n}': '{duck_type(t)}'" for n, t in cols) + "}"
    con.execute(
        f'INSERT INTO "{database}"."{tname}" SELECT * FROM '
        f"read_json('{ndjson}', format='newline_delimited', columns={types})"
    )
    os.remove(ndjson)
    return len(rows)


def to_duckdb(sql):
    return sqlglot.transpile(sql, read="trino", write="duckdb")[0]


def as_athena(v):
    """A value as GetQueryResults gives it: text, or null."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def check_versions():
    if sqlglot.__version__ != SQLGLOT_VERSION or duckdb.__version__ != DUCKDB_VERSION:
        sys.exit(
            f"athena_duckdb: sqlglot {sqlglot.__version__} / duckdb {duckdb.__version__}; "
            f"scripts/test installs sqlglot {SQLGLOT_VERSION} and duckdb {DUCKDB_VERSION}"
        )


def check(paths):
    problems = []
    for p in paths:
        sql = open(p, encoding="utf-8").read()
        tree = sqlglot.parse_one(sql, read="trino")
        for node in tree.find_all(exp.Func):
            if isinstance(node, exp.Anonymous):
                problems.append(f"{p}: sqlglot does not know {node.name}()")
                continue
            name = node.sql_name()
            # Operators and casts sqlglot models as functions are not calls.
            if isinstance(node, (exp.Cast, exp.Case, exp.If, exp.Lambda)) or not node.key:
                continue
            call = sqlglot.transpile(node.sql(dialect="trino"), read="trino", write="trino")[0]
            head = call.split("(", 1)[0].strip().upper()
            if "(" in call and head.isidentifier() and head not in TRINO_FUNCTIONS:
                problems.append(f"{p}: {head}() is not among the checked functions ({name})")
    con = duckdb.connect()
    for trino, want in SEMANTICS:
        duck = to_duckdb(f"SELECT {trino}")
        try:
            got = con.execute(duck).fetchone()[0]
        except Exception as e:  # noqa: BLE001 - reported, not hidden
            problems.append(f"{trino}: DuckDB failed on {duck}: {e}")
            continue
        if got != want:
            problems.append(f"{trino}: Trino gives {want!r}, DuckDB {got!r} ({duck})")
    if problems:
        sys.exit("athena_duckdb check:\n  " + "\n  ".join(problems))
    print(f"checked {len(paths)} statement(s) and {len(SEMANTICS)} expressions")


def run(archive, table, sql_path, out):
    con = duckdb.connect()
    n = build_table(con, archive, table)
    sql = open(sql_path, encoding="utf-8").read()
    rel = con.execute(to_duckdb(sql))
    columns = [d[0] for d in rel.description]
    rows = [[as_athena(v) for v in r] for r in rel.fetchall()]
    with open(out, "w", encoding="utf-8") as f:
        json.dump({"columns": columns, "rows": rows, "table_rows": n}, f)


def main():
    check_versions()
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("sql", nargs="+")
    r = sub.add_parser("run")
    r.add_argument("--archive", required=True)
    r.add_argument("--table", required=True, help="DATABASE.TABLE, as in athena:DATABASE.TABLE")
    r.add_argument("--sql", required=True)
    r.add_argument("--out", required=True)
    a = ap.parse_args()
    if a.cmd == "check":
        check(a.sql)
    else:
        run(a.archive, a.table, a.sql, a.out)


if __name__ == "__main__":
    main()
