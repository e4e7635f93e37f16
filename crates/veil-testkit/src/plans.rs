//! Query plans for tests that pin how a hot statement reads its tables: the generic plan
//! a long-lived pooled connection settles on, and what each of its scans looks up by.

/// The generic plan of `sql` in JSON: the plan a pooled connection ends up with after a
/// few executions, whatever the values (its parameters are typed by the statement's own
/// casts or columns; all of them are NULL here).
pub async fn generic_plan(
    conn: &mut sqlx::PgConnection,
    sql: &str,
) -> anyhow::Result<serde_json::Value> {
    let name = format!("plan_{}", uuid::Uuid::now_v7().simple());
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "SET plan_cache_mode = force_generic_plan; PREPARE {name} AS {sql}"
    )))
    .execute(&mut *conn)
    .await?;
    let nulls = vec!["NULL"; parameter_count(sql)].join(", ");
    let explain = format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({nulls})");
    let plan = sqlx::query_scalar(sqlx::AssertSqlSafe(explain))
        .fetch_one(&mut *conn)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DEALLOCATE {name}")))
        .execute(&mut *conn)
        .await?;
    Ok(plan)
}

/// The highest `$n` in `sql`.
fn parameter_count(sql: &str) -> usize {
    sql.split('$')
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .max()
        .unwrap_or(0)
}

/// The index condition (of an index scan, or the recheck condition of a bitmap heap
/// scan) of every scan in `plan` that reads `relation`; empty for a sequential scan.
pub fn scan_conditions(plan: &serde_json::Value, relation: &str) -> Vec<String> {
    let mut out = Vec::new();
    collect(plan, relation, &mut out);
    out
}

/// Asserts that `plan` reads `relation`, and only by index conditions that contain one
/// of `lookups` (a scan of the table, or of a wider range of an index, fails); `case`
/// names the plan's circumstances in the failure.
pub fn assert_reads_by(plan: &serde_json::Value, relation: &str, lookups: &[&str], case: &str) {
    let conditions = scan_conditions(plan, relation);
    assert!(
        !conditions.is_empty(),
        "{case}: no read of {relation}: {plan:#}"
    );
    for condition in conditions {
        assert!(
            lookups.iter().any(|lookup| condition.contains(lookup)),
            "{case}: {relation} read by `{condition}`; plan: {plan:#}"
        );
    }
}

fn collect(node: &serde_json::Value, relation: &str, out: &mut Vec<String>) {
    match node {
        serde_json::Value::Array(items) => {
            for item in items {
                collect(item, relation, out);
            }
        }
        serde_json::Value::Object(fields) => {
            let is_scan = fields
                .get("Node Type")
                .and_then(|v| v.as_str())
                .is_some_and(|t| t.contains("Scan"));
            if is_scan && fields.get("Relation Name").and_then(|v| v.as_str()) == Some(relation) {
                let condition = ["Index Cond", "Recheck Cond"]
                    .iter()
                    .find_map(|name| fields.get(*name).and_then(|v| v.as_str()))
                    .unwrap_or("");
                out.push(condition.to_string());
            }
            for value in fields.values() {
                collect(value, relation, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_highest_parameter() {
        assert_eq!(parameter_count("SELECT $1, $12::int[], $3"), 12);
        assert_eq!(parameter_count("SELECT 1"), 0);
    }

    #[test]
    fn finds_the_conditions_of_scans_of_a_relation_only() {
        let plan = serde_json::json!([{"Plan": {
            "Node Type": "ModifyTable", "Relation Name": "t",
            "Plans": [
                {"Node Type": "Index Scan", "Relation Name": "t", "Index Cond": "(a = $1)"},
                {"Node Type": "Seq Scan", "Relation Name": "t"},
                {"Node Type": "Index Scan", "Relation Name": "u", "Index Cond": "(b = 1)"}
            ]
        }}]);
        assert_eq!(
            scan_conditions(&plan, "t"),
            vec!["(a = $1)".to_string(), String::new()]
        );
    }
}
