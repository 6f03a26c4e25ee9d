"""Read commands print what Nomad 1.0.18 printed (TRANSCRIPTS.md) when the API answers what Nomad's did."""

from __future__ import annotations

from cli_fake_agent import NODE_ID

JOB_LIST = """\
ID                                       Type                 Priority  Status   Submit Date
hello-batch                              batch                50        dead     2026-11-22T10:24:32Z
param-echo                               batch/parameterized  50        running  2026-11-22T10:25:17Z
param-echo/dispatch-1795343117-9f61de25  batch                50        dead     2026-11-22T10:25:17Z
param-echo/dispatch-1795343118-88d1c248  batch                50        dead     2026-11-22T10:25:18Z
param-echo/dispatch-1795343118-ec0c877d  batch                50        dead     2026-11-22T10:25:18Z
sleeper                                  service              50        running  2026-11-22T10:24:54Z
"""

SLEEPER = """\
ID            = sleeper
Name          = sleeper
Submit Date   = 2026-11-22T10:24:54Z
Type          = service
Priority      = 50
Datacenters   = dc1
Namespace     = default
Status        = running
Periodic      = false
Parameterized = false

Summary
Task Group  Queued  Starting  Running  Failed  Complete  Lost
g           0       0         3        0       0         0

Latest Deployment
ID          = 79185bb7
Status      = successful
Description = Deployment completed successfully

Deployed
Task Group  Desired  Placed  Healthy  Unhealthy  Progress Deadline
g           3        3       3        0          2026-11-22T10:35:04Z

Allocations
ID        Node ID   Task Group  Version  Desired  Status   Created  Modified
5958c01c  cb6f504b  g           1        run      running  12s ago  2s ago
af13d230  cb6f504b  g           1        run      running  12s ago  2s ago
c7bb4329  cb6f504b  g           1        run      running  24s ago  2s ago
"""

HELLO_BATCH_VERBOSE = """\
ID            = hello-batch
Name          = hello-batch
Submit Date   = 2026-11-22T10:24:32Z
Type          = batch
Priority      = 50
Datacenters   = dc1
Namespace     = default
Status        = dead
Periodic      = false
Parameterized = false

Summary
Task Group  Queued  Starting  Running  Failed  Complete  Lost
g           0       0         0        0       1         0

Evaluations
ID                                    Priority  Triggered By  Status    Placement Failures
7d70a11b-33a2-f1b3-3c96-c23f7df9ec02  50        job-register  complete  false

Allocations
ID                                    Eval ID                               Node ID                               \
Node Name  Task Group  Version  Desired  Status    Created               Modified
61b4612e-6250-f877-ccc4-8a793507a04d  7d70a11b-33a2-f1b3-3c96-c23f7df9ec02  cb6f504b-a5aa-734e-87e3-69e28fa88f85  \
vm         g           0        run      complete  2026-11-22T10:24:32Z  2026-11-22T10:24:33Z
"""

PARAM_ECHO = """\
ID            = param-echo
Name          = param-echo
Submit Date   = 2026-11-22T10:25:17Z
Type          = batch
Priority      = 50
Datacenters   = dc1
Namespace     = default
Status        = running
Periodic      = false
Parameterized = true

Parameterized Job
Payload           = optional
Required Metadata = k
Optional Metadata = opt

Parameterized Job Summary
Pending  Running  Dead
0        0        3

Dispatched Jobs
ID                                       Status
param-echo/dispatch-1795343117-9f61de25  dead
param-echo/dispatch-1795343118-88d1c248  dead
param-echo/dispatch-1795343118-ec0c877d  dead
"""

NODE_DETAIL = """\
ID              = cb6f504b-a5aa-734e-87e3-69e28fa88f85
Name            = vm
Class           = <none>
DC              = dc1
Drain           = false
Eligibility     = eligible
Status          = ready
CSI Controllers = <none>
CSI Drivers     = <none>
Uptime          = 13m41s
Host Volumes    = <none>
CSI Volumes     = <none>
Driver Status   = docker,exec,java,mock_driver,raw_exec

Node Events
Time                  Subsystem  Message
2026-11-22T10:23:55Z  Cluster    Node registered

Allocated Resources
CPU         Memory      Disk
0/4890 MHz  0 B/24 GiB  0 B/78 GiB

Allocation Resource Utilization
CPU         Memory
0/4890 MHz  0 B/24 GiB

Host Resource Utilization
CPU          Memory          Disk
73/4890 MHz  160 MiB/24 GiB  24 GiB/252 GiB

Allocations
No allocations placed
"""

ALLOC_STATUS = """\
ID                  = 5958c01c-447d-0399-fa51-523d563ff9f1
Eval ID             = 4e389da8
Name                = sleeper.g[1]
Node ID             = cb6f504b
Node Name           = vm
Job ID              = sleeper
Job Version         = 1
Client Status       = running
Client Description  = Tasks are running
Desired Status      = run
Desired Description = <none>
Created             = 13s ago
Modified            = 3s ago
Deployment ID       = 79185bb7
Deployment Health   = healthy

Task "sleep" is "running"
Task Resources
CPU       Memory         Disk     Addresses
0/20 MHz  38 MiB/16 MiB  300 MiB<empty Addresses cell>

Task Events:
Started At     = 2026-11-22T10:24:54Z
Finished At    = N/A
Total Restarts = 0
Last Restart   = N/A

Recent Events:
Time                  Type        Description
2026-11-22T10:24:54Z  Started     Task started by client
2026-11-22T10:24:54Z  Task Setup  Building Task Directory
2026-11-22T10:24:54Z  Received    Task received by client
""".replace("<empty Addresses cell>", "  ")

MEMBERS_3 = """\
Name       Address    Port  Status  Leader  Protocol  Build   Datacenter  Region
s1.global  127.0.0.1  4648  alive   true    2         1.0.18  dc1         global
s2.global  127.0.0.1  5648  alive   false   2         1.0.18  dc1         global
s3.global  127.0.0.1  6648  alive   false   2         1.0.18  dc1         global
"""

PEERS_3 = """\
Node       ID              Address         State     Voter  RaftProtocol
s1.global  127.0.0.1:4647  127.0.0.1:4647  leader    true   2
s2.global  127.0.0.1:5647  127.0.0.1:5647  follower  true   2
s3.global  127.0.0.1:6647  127.0.0.1:6647  follower  true   2
"""


def test_job_status_list(agent, yurt):
    hidden = ("bb-docker", "cron-echo")
    agent.job_stubs = [j for j in agent.job_stubs if not j["ID"].startswith(hidden)]
    assert yurt("job status") == (0, JOB_LIST, "")
    assert yurt("status") == (0, JOB_LIST, "")


def test_job_status_detail_service_with_deployment(yurt, frozen):
    frozen(1795343106.0)
    assert yurt("job status", "sleeper") == (0, SLEEPER, "")
    # `yurt status <id>` resolves the ID to a job (here without /v1/search, through the prefix lists).
    assert yurt("status", "sleeper") == (0, SLEEPER, "")


def test_job_status_verbose_batch(yurt, frozen):
    frozen(1795343077.0)
    code, out, err = yurt("job status", "-verbose", "hello-batch")
    assert (code, err) == (0, "")
    assert out == HELLO_BATCH_VERBOSE.replace("\\\n", "")
    code, out, _ = yurt("job status", "hello-b")
    assert "61b4612e  cb6f504b  g           0        run      complete  4s ago   3s ago" in out.splitlines()


def test_job_status_parameterized_parent(agent, yurt):
    stub = next(j for j in agent.job_stubs if j["ID"] == "param-echo")
    agent.jobs["param-echo"] = {**stub, "Namespace": "default", "Periodic": None, "ParameterizedJob": {
        "Payload": "optional", "MetaRequired": ["k"], "MetaOptional": ["opt"]}}
    assert yurt("job status", "param-echo") == (0, PARAM_ECHO, "")


def test_job_status_missing_and_ambiguous(yurt):
    assert yurt("job status", "nonexistent-job") == (1, "", 'No job(s) with prefix or id "nonexistent-job" found\n')
    code, out, err = yurt("job status", "param")
    assert (code, out) == (1, "")
    lines = err.splitlines()
    assert lines[:2] == ["Prefix matched multiple jobs", ""]
    assert lines[2].split() == ["ID", "Type", "Priority", "Status", "Submit", "Date"]
    assert [line.split()[0] for line in lines[3:]] == ["param-echo", "param-echo/dispatch-1795343117-9f61de25",
                                                       "param-echo/dispatch-1795343118-88d1c248",
                                                       "param-echo/dispatch-1795343118-ec0c877d"]


def test_node_status_list_and_detail(agent, yurt):
    assert yurt("node status") == (0, "ID        DC   Name  Class   Drain  Eligibility  Status\n"
                                      "cb6f504b  dc1  vm    <none>  false  eligible     ready\n", "")
    agent.node_allocs = {}
    agent.on("GET", "/v1/client/stats", {"Uptime": 821, "CPUTicksConsumed": 73.4,
                                         "Memory": {"Used": 167772160, "Total": 25274793984},
                                         "DiskStats": [{"Device": "/dev/vda", "Used": 24 * 2**30,
                                                        "Size": 270553174016}]})
    assert yurt("node status", "cb6f504b") == (0, NODE_DETAIL, "")
    code, out, _ = yurt("node status", "-verbose", NODE_ID)
    assert code == 0
    assert "Driver       Detected  Healthy  Message  Time" in out
    assert "qemu         false     false    <none>   2026-11-22T10:23:54Z" in out
    assert "2026-11-22T10:23:55Z  Cluster    Node registered  <none>" in out
    assert "driver.docker.runtimes    = io.containerd.runc.v2,io.containerd.runtime.v1.linux,runc" in out
    assert yurt("node status", "deadbeef") == (1, "", 'No node(s) with prefix "deadbeef" found\n')


def test_alloc_status(agent, yurt, frozen):
    frozen(1795343107.0)
    agent.on("GET", "/v1/client/allocation/5958c01c-447d-0399-fa51-523d563ff9f1/stats", {"Tasks": {"sleep": {
        "ResourceUsage": {"CpuStats": {"TotalTicks": 0}, "MemoryStats": {"RSS": 38 * 2**20}}}}})
    assert yurt("alloc status", "5958c01c") == (0, ALLOC_STATUS, "")
    assert yurt("alloc status", "deadbeef") == (1, "", 'No allocation(s) with prefix or id "deadbeef" found\n')


def test_server_members_and_raft_peers(agent, yurt):
    assert yurt("server members") == (0, (
        "Name       Address    Port  Status  Leader  Protocol  Build   Datacenter  Region\n"
        "vm.global  127.0.0.1  4648  alive   true    2         1.0.18  dc1         global\n"), "")
    template = agent.members["Members"][0]
    agent.members["Members"] = [
        {**template, "Name": f"s{i}.global", "Port": 3648 + 1000 * i, "Tags": {**template["Tags"], "port": str(
            3647 + 1000 * i)}} for i in (3, 1, 2)]
    assert yurt("server members") == (0, MEMBERS_3, "")
    agent.raft = {"Index": 9, "Servers": [
        {"ID": f"127.0.0.1:{3647 + 1000 * i}", "Node": f"s{i}.global", "Address": f"127.0.0.1:{3647 + 1000 * i}",
         "Leader": i == 1, "Voter": True, "RaftProtocol": "2"} for i in (1, 2, 3)]}
    assert yurt("operator raft list-peers") == (0, PEERS_3, "")


def test_job_history_and_deployments(agent, yurt):
    v1 = agent.jobs["sleeper"]
    v0 = {**v1, "Version": 0, "SubmitTime": 1795343081911000000}
    agent.on("GET", "/v1/job/sleeper/versions", {"Versions": [v1, v0], "Diffs": None})
    assert yurt("job history", "sleeper") == (0, (
        "Version     = 1\nStable      = true\nSubmit Date = 2026-11-22T10:24:54Z\n\n"
        "Version     = 0\nStable      = true\nSubmit Date = 2026-11-22T10:24:41Z\n"), "")
    assert yurt("job deployments", "sleeper") == (0, (
        "ID        Job ID   Job Version  Status      Description\n"
        "79185bb7  sleeper  1            successful  Deployment completed successfully\n"
        "7232f7fd  sleeper  0            successful  Deployment completed successfully\n"), "")


def test_inspect_eval_and_deployment_status(yurt):
    import json

    code, out, _ = yurt("job inspect", "hello-batch")
    assert code == 0 and json.loads(out)["Job"]["ID"] == "hello-batch"
    assert out.startswith('{\n    "Job": {\n        "Stop": false,')
    code, out, _ = yurt("eval status", "7d70a11b")
    assert code == 0
    assert "Status             = complete" in out and "Job ID             = hello-batch" in out
    code, out, _ = yurt("deployment status", "7232f7fd")
    assert code == 0
    assert out.splitlines()[:5] == ["ID          = 7232f7fd", "Job ID      = sleeper", "Job Version = 0",
                                    "Status      = successful", "Description = Deployment completed successfully"]
    code, out, _ = yurt("node status", "-t", "{{range .}}{{.Name}} {{.Status}}{{end}}")
    assert (code, out) == (0, "vm ready\n")


CRON_ECHO = """\
ID                   = cron-echo
Name                 = cron-echo
Submit Date          = 2026-11-22T10:25:21Z
Type                 = batch
Priority             = 50
Datacenters          = dc1
Namespace            = default
Status               = running
Periodic             = true
Parameterized        = false
Next Periodic Launch = 2026-11-22T10:30:00Z (4m36s from now)

Children Job Summary
Pending  Running  Dead
0        0        1

Previously Launched Jobs
ID                             Status
cron-echo/periodic-1795343122  dead
"""

FORCE = """\
==> Monitoring evaluation "0beba9fc"
    Evaluation triggered by job "cron-echo/periodic-1795343122"
    Allocation "9880895f" created: node "cb6f504b", group "g"
    Evaluation status changed: "pending" -> "complete"
==> Evaluation "0beba9fc" finished with status "complete"
"""


def test_periodic_job_status_and_force(agent, yurt, frozen):
    stub = next(j for j in agent.job_stubs if j["ID"] == "cron-echo")
    agent.jobs["cron-echo"] = {**stub, "Namespace": "default", "ParameterizedJob": None, "Periodic": {
        "Enabled": True, "Spec": "*/15 * * * *", "SpecType": "cron", "ProhibitOverlap": True, "TimeZone": "UTC"}}
    frozen(1795343124.5)
    assert yurt("job status", "cron-echo") == (0, CRON_ECHO, "")
    agent.on("PUT", "/v1/job/cron-echo/periodic/force", {"EvalID": "0beba9fc-8637-765a-c24f-f32e125643ce"})
    assert yurt("job periodic force", "cron") == (0, FORCE, "")
