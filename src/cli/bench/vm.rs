//! A small client of the VictoriaMetrics single-node HTTP API, for
//! loading the same points into it and running the comparable queries.
//!
//! Endpoints used (VictoriaMetrics 1.79 as packaged by Debian):
//! `POST /api/v1/import` with JSON lines, which returns 204 once the rows
//! are buffered, and `GET /api/v1/query` and `GET /api/v1/query_range`
//! of the Prometheus query API. Query URLs carry `nocache=1`, so repeated queries
//! are computed anew instead of being read from VictoriaMetrics' rollup
//! result cache.

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use reqwest::Url;
use serde_json::Value as Json;

/// An HTTP client bound to one VictoriaMetrics server.
#[derive(Clone)]
pub struct VictoriaMetrics {
    client: reqwest::Client,
    base: Url,
}

impl VictoriaMetrics {
    /// Creates a client for `url`, such as `http://127.0.0.1:8428`. Proxy
    /// variables in the environment are ignored, so requests go straight
    /// to the given address.
    pub fn new(url: &str) -> anyhow::Result<VictoriaMetrics> {
        let base = Url::parse(url).with_context(|| {
            format!(
                "invalid --vm-url {url:?}; expected http://HOST:PORT such as http://127.0.0.1:8428"
            )
        })?;
        if base.scheme() != "http" {
            bail!(
                "invalid --vm-url {url:?}: scheme {:?} is not supported; use http://",
                base.scheme()
            );
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("failed to build the HTTP client")?;
        Ok(VictoriaMetrics { client, base })
    }

    fn endpoint(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path)
            .with_context(|| format!("failed to build the URL of {path} from {}", self.base))
    }

    /// Imports JSON lines and waits for the server's acknowledgement.
    pub async fn import(&self, body: Bytes) -> anyhow::Result<()> {
        let url = self.endpoint("/api/v1/import")?;
        let response = self
            .client
            .post(url.clone())
            .body(body)
            .send()
            .await
            .with_context(|| format!("POST {url} failed; is VictoriaMetrics running there?"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST {url} returned {status}: {}", text.trim());
        }
        Ok(())
    }

    async fn get_json(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<Json> {
        let mut url = self.endpoint(path)?;
        url.query_pairs_mut()
            .extend_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .append_pair("nocache", "1");
        let response = self
            .client
            .get(url.clone())
            .send()
            .await
            .with_context(|| format!("GET {url} failed; is VictoriaMetrics running there?"))?;
        let status = response.status();
        let text = response
            .text()
            .await
            .with_context(|| format!("failed to read the response of GET {url}"))?;
        if !status.is_success() {
            bail!("GET {url} returned {status}: {}", text.trim());
        }
        let json: Json = serde_json::from_str(&text)
            .with_context(|| format!("GET {url} returned invalid JSON"))?;
        if json["status"] != "success" {
            bail!("GET {url} failed: {text}");
        }
        Ok(json)
    }

    /// Runs a range query and returns the number of series in the result.
    pub async fn query_range(
        &self,
        query: &str,
        start_ns: i64,
        end_ns: i64,
        step_seconds: f64,
    ) -> anyhow::Result<usize> {
        let json = self
            .get_json(
                "/api/v1/query_range",
                &[
                    ("query", query.to_owned()),
                    ("start", seconds(start_ns)),
                    ("end", seconds(end_ns)),
                    ("step", format!("{step_seconds}s")),
                ],
            )
            .await?;
        result_array(&json).map(Vec::len)
    }

    /// Counts the stored points of `metric` with times in
    /// `[start_ns, end_ns)`, at millisecond precision.
    pub async fn count_points(
        &self,
        metric: &str,
        start_ns: i64,
        end_ns: i64,
    ) -> anyhow::Result<u64> {
        // The lookbehind window (end - window, end] must reach back past
        // start, and the evaluation time excludes a point at `end_ns`.
        let end_ms = end_ns.div_euclid(1_000_000) - 1;
        let window_ms = end_ms - start_ns.div_euclid(1_000_000) + 1;
        let query = format!("sum(count_over_time({{__name__={metric:?}}}[{window_ms}ms]))");
        let json = self
            .get_json(
                "/api/v1/query",
                &[
                    ("query", query),
                    ("time", format!("{}", end_ms as f64 / 1e3)),
                ],
            )
            .await?;
        let results = result_array(&json)?;
        let Some(first) = results.first() else {
            return Ok(0);
        };
        let text = first["value"][1]
            .as_str()
            .ok_or_else(|| anyhow!("unexpected count result: {first}"))?;
        let count: f64 = text
            .parse()
            .with_context(|| format!("unexpected count value {text:?}"))?;
        Ok(count as u64)
    }
}

fn seconds(time_ns: i64) -> String {
    format!("{}", time_ns as f64 / 1e9)
}

fn result_array(json: &Json) -> anyhow::Result<&Vec<Json>> {
    json["data"]["result"]
        .as_array()
        .ok_or_else(|| anyhow!("response has no data.result array: {json}"))
}

/// Builds the MetricsQL query that matches a tidemark aggregation per
/// bucket of `step_seconds`, grouped by `group_by`.
///
/// MEAN is the mean of each series' mean, which equals the mean over the
/// group's points only when every series has the same number of points
/// per bucket, as the benchmark data has.
pub fn aggregation_query(
    function: &str,
    metric: &str,
    step_seconds: f64,
    group_by: &[String],
) -> anyhow::Result<String> {
    let (outer, inner) = match function {
        "mean" => ("avg", "avg_over_time"),
        "max" => ("max", "max_over_time"),
        "min" => ("min", "min_over_time"),
        "sum" => ("sum", "sum_over_time"),
        "count" => ("sum", "count_over_time"),
        other => bail!(
            "aggregation {other:?} has no VictoriaMetrics equivalent here; use mean, max, min, sum or count"
        ),
    };
    let by = if group_by.is_empty() {
        String::new()
    } else {
        format!(" by ({})", group_by.join(","))
    };
    Ok(format!(
        "{outer}{by} ({inner}({{__name__={metric:?}}}[{step_seconds}s]))"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregation_queries() {
        let query = aggregation_query("mean", "bench", 60.0, &["group".to_owned()]).unwrap();
        assert_eq!(
            query,
            "avg by (group) (avg_over_time({__name__=\"bench\"}[60s]))"
        );
        let query = aggregation_query("max", "bench", 60.0, &[]).unwrap();
        assert_eq!(query, "max (max_over_time({__name__=\"bench\"}[60s]))");
        let error = aggregation_query("p99", "bench", 60.0, &[]).unwrap_err();
        assert!(error.to_string().contains("no VictoriaMetrics equivalent"));
    }

    #[test]
    fn url_must_be_http() {
        let error = VictoriaMetrics::new("https://127.0.0.1:8428")
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("use http://"), "{error}");
        assert!(VictoriaMetrics::new("http://127.0.0.1:8428").is_ok());
    }
}
