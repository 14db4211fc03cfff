"""The crash campaign, bounded for `make check` (issue: an engine that never
loses a result): ~30 kills (kill -9, sometimes SIGTERM) of a real server under
a mixed workload on one SQLite data directory, in about a minute; see
crash_campaign.py for the workload and the invariants, and
scripts/crash-campaign for a long run.

PW_CRASH_SEED=S replays a seed's workload choices and kill moments;
PW_CRASH_KILLS=N changes the number of kills. On a failure the data directory
(server.log: one line per server generation) is kept and named.
"""

import os
import sys
import unittest

import crash_campaign


class CrashCampaignTest(unittest.TestCase):
    def test_kills_never_lose_acknowledged_work_nor_leave_anything_stuck(self):
        seed = int(os.environ["PW_CRASH_SEED"]) if os.environ.get("PW_CRASH_SEED") else None
        c = crash_campaign.Campaign(
            kills=int(os.environ.get("PW_CRASH_KILLS", "30")), seed=seed,
            max_seconds=75,        # Stop killing after this long, however far it got.
            settle_every=12,       # One settle half-way, one at the end.
            max_pipelines=8, settle_timeout=100)
        figures = c.run()
        report = c.report(figures)
        sys.stderr.write(report + "\n")
        if c.failures:
            report += ("\nreplay: PW_CRASH_SEED=%d; data directory kept: %s\nserver log tail:\n%s"
                       % (c.seed, c.data_dir, c.log_excerpt(80)))
        self.assertEqual(figures["lost"], 0, report)
        self.assertEqual(figures["stuck"], 0, report)
        self.assertEqual(figures["integrity_failures"], 0, report)
        # A job handed out in a reply that never arrived is queued again by
        # Recover, not left to wait out the 60 s dispatch lease.
        self.assertEqual(figures["jobs_held_by_dispatch_lease"], 0, report)
        self.assertEqual(c.failures, [], report)
        # The campaign did what it is for: kills landed on running work,
        # acknowledged requests were checked, interrupted stages were retried.
        self.assertGreaterEqual(figures["kills"] + figures["sigterms"], 10, report)
        self.assertGreater(figures["interrupted_runs"], 0, report)
        self.assertGreater(figures["acknowledged_starts"], 0, report)
        self.assertGreater(figures["acknowledged_approvals"], 0, report)
        self.assertGreater(figures["acknowledged_job_results"], 0, report)
        self.assertGreater(figures["interrupted_retried_succeeded"], 0, report)
        c.cleanup()  # Kept when anything failed.


if __name__ == "__main__":
    unittest.main()
