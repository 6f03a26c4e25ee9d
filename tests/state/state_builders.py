"""Small builders of jobs, nodes, allocations and evaluations for state store tests."""

from __future__ import annotations

from orchestrator.structs import (
    AllocatedResources,
    AllocatedTaskResources,
    Allocation,
    Deployment,
    DeploymentState,
    Evaluation,
    Job,
    Node,
    Task,
    TaskGroup,
)


def make_job(job_id: str = "web", *, groups: tuple[str, ...] = ("g",), count: int = 1,
             job_type: str = "service", namespace: str = "default", image: str = "nginx:1", **fields) -> Job:
    tgs = [TaskGroup(name=g, count=count, tasks=[Task(name="t", driver="docker", config={"image": image})])
           for g in groups]
    return Job(id=job_id, name=job_id, namespace=namespace, type=job_type, datacenters=["dc1"],
               task_groups=tgs, **fields)


def make_node(node_id: str = "node-1", **fields) -> Node:
    fields.setdefault("status", "ready")
    return Node(id=node_id, name=node_id, **fields)


def make_alloc(alloc_id: str, job: Job, node_id: str = "node-1", *, group: str = "g", eval_id: str = "",
               deployment_id: str = "", client_status: str = "pending", cpu: int = 100,
               **fields) -> Allocation:
    resources = AllocatedResources(tasks={"t": AllocatedTaskResources(cpu={"CpuShares": cpu})})
    return Allocation(id=alloc_id, namespace=job.namespace, job_id=job.id, job=job, task_group=group,
                      name=f"{job.id}.{group}[0]", node_id=node_id, eval_id=eval_id,
                      deployment_id=deployment_id, client_status=client_status,
                      allocated_resources=resources, **fields)


def make_eval(eval_id: str, job_id: str = "web", *, status: str = "pending", namespace: str = "default",
              **fields) -> Evaluation:
    return Evaluation(id=eval_id, job_id=job_id, namespace=namespace, status=status, **fields)


def make_deployment(deployment_id: str, job: Job, *, groups: tuple[str, ...] = ("g",),
                    **fields) -> Deployment:
    return Deployment(id=deployment_id, namespace=job.namespace, job_id=job.id, job_version=job.version,
                      task_groups={g: DeploymentState(desired_total=1) for g in groups}, **fields)
