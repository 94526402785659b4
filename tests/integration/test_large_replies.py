"""Lists whose items are large still answer: a page is cut to fit one gRPC reply and
the client follows on, so nothing is lost and nothing fails with RESOURCE_EXHAUSTED."""

from __future__ import annotations


def test_history_of_runs_with_large_results(jobs):
    job = jobs.create("big-results", "def execute(job):\n    return 'x' * 900000\n")
    runs = [job.trigger(wait=True, timeout=60) for _ in range(6)]  # 5.4 MB of results
    assert all(r.succeeded for r in runs)
    history = job.history(limit=20)
    assert [e.id for e in history] == [r.id for r in reversed(runs)]


def test_an_inbox_of_large_messages(jobs):
    source = (
        "def execute(job):\n"
        "    for i in range(80):\n"
        "        User.get('u').send(str(i) + ' ' + 'y' * 60000)\n"
    )
    assert jobs.create("chatty", source).trigger(wait=True, timeout=60).succeeded  # 4.8 MB of messages
    inbox = list(jobs.messages("u"))
    assert [m.parts[0]["text"].split()[0] for m in inbox] == [str(i) for i in range(80)]


def test_a_listing_of_jobs_with_large_metadata(jobs):
    for i in range(60):  # 3.6 MB of metadata
        jobs.create(f"meta-{i:02d}", "def execute(job):\n    return 1\n", metadata={"blob": "z" * 60000})
    assert [j.name for j in jobs.get_all(include_dynamic=True)] == [f"meta-{i:02d}" for i in range(60)]


def test_versions_of_a_job_with_a_large_source(jobs):
    body = "    # " + "s" * 200 + "\n"
    job = jobs.create("big-source", "def execute(job):\n" + body * 1000 + "    return 0\n")  # ~200 KB
    for i in range(1, 20):  # 4 MB of sources in all
        job = job.update(execute="def execute(job):\n" + body * 1000 + f"    return {i}\n")
    versions = job.versions()
    assert [v.number for v in versions] == list(range(20, 0, -1))
