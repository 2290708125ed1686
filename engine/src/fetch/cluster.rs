//! A fetch on an Apache Ballista cluster, with its rows in source order.
//!
//! Ballista's own client (`DistributedQueryExec`) returns a job's result partitions in the order
//! its tasks finished, which differs from run to run; the order of rows decides the order of
//! events with equal timestamps, and so the dataset. So the job is submitted here with the same
//! messages that client sends (the logical plan in DataFusion's protobuf form, the session's
//! settings), and its result partitions are read in partition order: all at once, yielded one
//! after another, as a local fetch yields a file's byte ranges. A plan that would merge
//! partitions in arrival order on the cluster runs as one task instead.

use std::sync::Arc;
use std::time::Duration;

use ballista_core::client::BallistaClient;
use ballista_core::extension::SessionConfigExt;
use ballista_core::serde::protobuf::{
    execute_query_params::Query, execute_query_result, job_status,
    scheduler_grpc_client::SchedulerGrpcClient, ExecuteQueryParams, GetJobStatusParams,
    KeyValuePair, PartitionLocation,
};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, SessionState};
use datafusion::logical_expr::LogicalPlan;
use datafusion_proto::logical_plan::AsLogicalPlan;
use datafusion_proto::protobuf::LogicalPlanNode;

/// The largest message exchanged with the scheduler and the executors (Ballista's default).
const MAX_MESSAGE: usize = 16 * 1024 * 1024;

fn failed(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("{what}: {e}"))
}

/// Runs `plan` on the cluster at `scheduler` (`df://host:port`) and returns its rows, result
/// partition 0 first.
pub(super) async fn execute(
    state: &SessionState,
    plan: &LogicalPlan,
    scheduler: &str,
) -> Result<SendableRecordBatchStream> {
    let url = format!("http://{}", scheduler.trim_start_matches("df://"));
    let locations = run_job(state, plan, &url).await?;
    let openers = locations
        .into_iter()
        .map(|location| Box::pin(fetch(location)) as super::Opener)
        .collect();
    let schema = Arc::new(plan.schema().as_arrow().clone());
    Ok(super::in_order(schema, openers))
}

/// Submits the job and waits for it; the result partitions' locations in partition order.
async fn run_job(
    state: &SessionState,
    plan: &LogicalPlan,
    url: &str,
) -> Result<Vec<PartitionLocation>> {
    let codec = state.config().ballista_logical_extension_codec();
    let mut buf = Vec::new();
    LogicalPlanNode::try_from_logical_plan(plan, codec.as_ref())
        .and_then(|node| node.try_encode(&mut buf))
        .map_err(|e| failed("encoding the fetch for the cluster", e))?;
    // A plan that merges partitions (a join's build side, an aggregation, a sort across
    // partitions) would read the shuffled stage outputs in arrival order: it runs as one task.
    let one_task = merges_partitions(plan);
    let settings = state
        .config()
        .options()
        .entries()
        .into_iter()
        .map(|entry| KeyValuePair {
            value: match entry.key.as_str() {
                "datafusion.execution.target_partitions" if one_task => Some("1".into()),
                _ => entry.value,
            },
            key: entry.key,
        })
        .collect();
    let channel = ballista_core::utils::create_grpc_client_endpoint(url.to_string(), None)
        .map_err(|e| failed("the scheduler's address", e))?
        .connect()
        .await
        .map_err(|e| failed(&format!("connecting to the scheduler at {url}"), e))?;
    let mut scheduler = SchedulerGrpcClient::new(channel)
        .max_encoding_message_size(MAX_MESSAGE)
        .max_decoding_message_size(MAX_MESSAGE);
    let submitted = scheduler
        .execute_query(ExecuteQueryParams {
            query: Some(Query::LogicalPlan(buf)),
            settings,
            session_id: state.session_id().to_string(),
            operation_id: format!(
                "feed-{}-{}",
                std::process::id(),
                chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
            ),
        })
        .await
        .map_err(|e| failed("submitting the fetch", e.message()))?
        .into_inner();
    let job_id = match submitted.result {
        Some(execute_query_result::Result::Success(s)) => s.job_id,
        Some(execute_query_result::Result::Failure(f)) => {
            return Err(failed("the scheduler refused the fetch", format!("{f:?}")))
        }
        None => return Err(failed("the scheduler", "answered without a result")),
    };
    loop {
        let status = scheduler
            .get_job_status(GetJobStatusParams {
                job_id: job_id.clone(),
            })
            .await
            .map_err(|e| failed("asking for the fetch's status", e.message()))?
            .into_inner()
            .status
            .and_then(|s| s.status);
        match status {
            Some(job_status::Status::Successful(done)) => {
                let mut locations = done.partition_location;
                locations.sort_by_key(|l| l.partition_id.as_ref().map(|p| p.partition_id));
                return Ok(locations);
            }
            Some(job_status::Status::Failed(f)) => {
                return Err(failed(&format!("the cluster's job {job_id}"), f.error))
            }
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Whether `plan` (its subqueries included) holds an operator whose distributed form reads
/// other tasks' outputs in the order they arrive.
fn merges_partitions(plan: &LogicalPlan) -> bool {
    use datafusion::common::tree_node::TreeNodeRecursion;
    let mut merges = false;
    let walked = plan.apply_with_subqueries(|node| {
        merges = matches!(
            node,
            LogicalPlan::Join(_)
                | LogicalPlan::Aggregate(_)
                | LogicalPlan::Window(_)
                | LogicalPlan::Distinct(_)
                | LogicalPlan::Sort(_)
                | LogicalPlan::Repartition(_)
                | LogicalPlan::RecursiveQuery(_)
                | LogicalPlan::Limit(_)
        );
        Ok(if merges {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    merges || walked.is_err()
}

/// Opens one result partition on the executor that holds it.
async fn fetch(location: PartitionLocation) -> Result<SendableRecordBatchStream> {
    let executor = location
        .executor_meta
        .ok_or_else(|| failed("a result partition", "names no executor"))?;
    let partition = location
        .partition_id
        .ok_or_else(|| failed("a result partition", "has no id"))?;
    let mut client = BallistaClient::try_new(
        &executor.host,
        executor.port as u16,
        MAX_MESSAGE,
        false,
        None,
        3,
        100,
        0,
        0,
    )
    .await
    .map_err(|e| failed(&format!("connecting to executor {}", executor.host), e))?;
    client
        .fetch_partition(
            &executor.id,
            &partition.into(),
            location.file_id,
            location.is_sort_shuffle,
            true,
        )
        .await
        .map_err(|e| failed("reading a result partition", e))
}
