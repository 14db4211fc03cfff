"""Buildbot (Debian's buildbot + buildbot-worker 3.7) as the peer of bench_all.py: a master and
one worker on loopback in a temporary directory, driven through the master's REST API.

Shapes, as Pipewright's: one build of N `true` steps (sequential), and one force of N builders
with one `true` step each, all on the one worker (a parallel group of N).
"""

import os
import shutil
import socket
import subprocess
import time

MASTER_CFG = r"""
from buildbot.plugins import changes, schedulers, steps, util, worker

c = BuildmasterConfig = {}
c['workers'] = [worker.Worker('w1', 'pass', max_builds=%(max_builds)d)]
c['protocols'] = {'pb': {'port': 'tcp:%(pb)d:interface=127.0.0.1'}}
c['change_source'] = [changes.PBChangeSource(user='change', passwd='changepw')]
c['builders'] = []
c['schedulers'] = []
STAMPS = %(stamps)r

def stamp(name, label):
    # The step's command records when it ran (date: one exec, as `true`).
    return steps.ShellCommand(command='date +%%s.%%N >> ' + STAMPS + '/' + name, name=label,
                              logEnviron=False)

def on_branch(name, builders):
    return schedulers.SingleBranchScheduler(
        name='on-' + name, builderNames=builders, treeStableTimer=None,
        change_filter=util.ChangeFilter(branch=name))

for name, n in %(sequential)r:
    f = util.BuildFactory([stamp(name, 's%%03d' %% i) for i in range(n)])
    c['builders'].append(util.BuilderConfig(name=name, workernames=['w1'], factory=f))
    c['schedulers'].append(on_branch(name, [name]))
for group in %(groups)r:
    names = ['par%%d-%%02d' %% (group, i) for i in range(group)]
    for name in names:
        f = util.BuildFactory([steps.ShellCommand(command=['true'], name='s', logEnviron=False)])
        c['builders'].append(util.BuilderConfig(name=name, workernames=['w1'], factory=f))
    c['schedulers'].append(schedulers.Triggerable(name='par%%d' %% group, builderNames=names))
    # A driver build: stamp, trigger the group and wait for it, stamp.
    drv = 'drv%%d' %% group
    f = util.BuildFactory([stamp(drv, 'before'),
                           steps.Trigger(schedulerNames=['par%%d' %% group], waitForFinish=True),
                           stamp(drv, 'after')])
    c['builders'].append(util.BuilderConfig(name=drv, workernames=['w1'], factory=f))
    c['schedulers'].append(on_branch(drv, [drv]))
c['title'] = 'bench'
c['buildbotURL'] = 'http://127.0.0.1/'
c['db'] = {'db_url': 'sqlite:///state.sqlite'}
c['buildbotNetUsageData'] = None
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Buildbot:
    """A running master + worker; close() stops both and removes the directory.

    Debian ships no buildbot-www (the REST API's base plugin), so builds are started with
    `buildbot sendchange` and timed by the `date` their steps append to files in stamps/.
    """

    def __init__(self, tmp, sequential, groups):
        self.dir = os.path.join(tmp, "buildbot")
        self.stamps = os.path.join(self.dir, "stamps")
        os.makedirs(self.stamps)
        self.pb = free_port()
        master = os.path.join(self.dir, "master")
        wdir = os.path.join(self.dir, "worker")
        self.env = dict(os.environ, PYTHONPATH="")
        self.master = self.wdir = None
        self._run("/usr/bin/buildbot", "create-master", "-q", master)
        with open(os.path.join(master, "master.cfg"), "w") as f:
            f.write(MASTER_CFG % {"pb": self.pb, "stamps": self.stamps, "sequential": sequential,
                                  "groups": groups, "max_builds": max(list(groups) + [1]) + 1})
        self._run("/usr/bin/buildbot", "start", master)
        self.master = master
        self._run("/usr/bin/buildbot-worker", "create-worker", "-q", wdir,
                  "127.0.0.1:%d" % self.pb, "w1", "pass")
        self._run("/usr/bin/buildbot-worker", "start", wdir)
        self.wdir = wdir
        # The worker attaches in the background: one warm-up build waits for it.
        for name, n in sequential[:1]:
            self.run_sequential(name, n)

    def _run(self, *argv):
        subprocess.run(argv, check=True, env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=120)

    def _stamps(self, name):
        try:
            with open(os.path.join(self.stamps, name)) as f:
                return [float(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def _send(self, branch, want, timeout=300):
        """sendchange on `branch`; waits until stamps/<branch> has `want` more lines."""
        before = len(self._stamps(branch))
        self._run("/usr/bin/buildbot", "sendchange", "-m", "127.0.0.1:%d" % self.pb,
                  "-a", "change:changepw", "-W", "bench", "-b", branch, "bench")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self._stamps(branch)
            if len(got) >= before + want:
                return got[before:before + want]
            time.sleep(0.05)
        raise RuntimeError("buildbot: %s did not finish (see %s)" % (branch, self.dir))

    def run_sequential(self, name, n):
        """One build of n steps; returns seconds per step: (last - first stamp) / (n - 1)."""
        s = self._send(name, n)
        return (s[-1] - s[0]) / (n - 1)

    def run_group(self, group):
        """Triggers the group of `group` one-step builds and waits for all; returns seconds
        from the driver's stamp before the trigger to its stamp after (one step included)."""
        s = self._send("drv%d" % group, 2)
        return s[1] - s[0]

    def close(self):
        for cmd, d in (("/usr/bin/buildbot-worker", self.wdir), ("/usr/bin/buildbot", self.master)):
            if d:
                subprocess.run([cmd, "stop", d], env=self.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)
