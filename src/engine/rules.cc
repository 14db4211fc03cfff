// Stage condition rules in the engine (rules 62-64): checking rule
// declarations against rule_types.json, performing kStartRule/kAbandonRule
// effects (Commands rules on the Commands executor, CloudWatchAlarm and
// LambdaInvoke as jobs for workers; VariableCheck is decided in core), the
// ticker's DeploymentWindow check, crash recovery of rules in progress, and
// OverrideStageCondition.

#include <algorithm>
#include <cctype>
#include <set>

#include "common/log.h"
#include "core/cron.h"
#include "engine/engine.h"
#include "engine/helpers.h"
#include "engine/internal.h"
#include "engine/rule_types.h"
#include "engine/time_zone.h"
#include "runner/orphans.h"

namespace pw::engine {
namespace {

const core::RuleDecl* FindRuleDecl(const core::PipelineDecl& d, const core::RuleRun& r) {
  const core::StageDecl* s = d.FindStage(r.stage);
  if (s == nullptr) return nullptr;
  for (const auto& c : s->Conditions(r.kind)) {
    for (const auto& rule : c.rules) {
      if (rule.name == r.rule) return &rule;
    }
  }
  return nullptr;
}

// The Commands action a Commands rule runs as.
core::ActionDecl CommandsActionOf(const core::RuleDecl& rule) {
  core::ActionDecl a;
  a.name = rule.name;
  a.type = {"Compute", "AWS", "Commands", "1"};
  a.configuration = rule.configuration;
  a.commands = rule.commands;
  a.input_artifacts = rule.input_artifacts;
  a.timeout_minutes = rule.timeout_minutes;
  return a;
}

std::string ConditionWhere(const core::StageDecl& s, core::ConditionKind k) {
  return "Stage '" + s.name + "' " +
         (k == core::ConditionKind::kBeforeEntry ? "beforeEntry"
          : k == core::ConditionKind::kOnSuccess ? "onSuccess"
                                                 : "onFailure") +
         " condition";
}

// Whether DeploymentWindow `config` (resolved) is open at `now`; a message
// when the window cannot be evaluated.
Result<bool> WindowOpen(const std::map<std::string, std::string>& config, EpochSeconds now) {
  auto cron_it = config.find("Cron");
  PW_ASSIGN_OR_RETURN(core::CronExpr cron,
                      core::ParseCron(cron_it == config.end() ? "" : cron_it->second));
  auto tz = config.find("TimeZone");
  const int64_t utc = static_cast<int64_t>(now);
  PW_ASSIGN_OR_RETURN(int offset, UtcOffsetSeconds(tz == config.end() ? "UTC" : tz->second, utc));
  return core::CronMatches(cron, utc + offset);
}

}  // namespace

Status Engine::CheckRuleDeclarations(const core::PipelineDecl& d) const {
  for (const auto& s : d.stages) {
    for (core::ConditionKind kind :
         {core::ConditionKind::kBeforeEntry, core::ConditionKind::kOnSuccess,
          core::ConditionKind::kOnFailure}) {
      for (const auto& c : s.Conditions(kind)) {
        for (const auto& rule : c.rules) {
          const std::string where =
              ConditionWhere(s, kind) + ", rule '" + rule.name + "' (" + rule.type.ToString() + ")";
          auto refuse = [&](const std::string& what) {
            return InvalidArgument(where + ": " + what, "InvalidStageDeclarationException");
          };
          const BuiltinActionType* t = FindRuleType(rule.type);
          if (t == nullptr) {
            return refuse("unknown rule type; see ListRuleTypes for the available types.");
          }
          for (const auto& [key, value] : rule.configuration) {
            if (t->FindProperty(key) == nullptr) {
              std::string names;
              for (const auto& p : t->properties) names += (names.empty() ? "" : ", ") + p.name;
              return refuse("the configuration property '" + key + "' does not exist" +
                            (names.empty() ? std::string("; the type takes none.")
                                           : "; its properties are " + names + "."));
            }
            if (key.find('\0') != std::string::npos || value.find('\0') != std::string::npos) {
              return refuse("configuration property " + key + " holds a NUL byte; remove it.");
            }
          }
          for (const auto& p : t->properties) {
            auto it = rule.configuration.find(p.name);
            if (it == rule.configuration.end()) {
              if (p.required)
                return refuse("the required configuration property '" + p.name + "' is missing.");
              continue;
            }
            if (p.allowed_values.empty() || HasVariable(it->second)) continue;
            bool allowed = false;
            for (const auto& v : p.allowed_values) allowed = allowed || SameText(it->second, v);
            if (!allowed) {
              std::string list;
              for (const auto& v : p.allowed_values) list += (list.empty() ? "" : ", ") + v;
              return refuse("configuration property '" + p.name + "' must be one of " + list +
                            ", not '" + it->second + "'.");
            }
          }
          const int inputs = static_cast<int>(rule.input_artifacts.size());
          if (inputs < t->min_inputs || inputs > t->max_inputs) {
            return refuse("has " + std::to_string(inputs) + " input artifacts; the type takes " +
                          std::to_string(t->min_inputs) + " to " + std::to_string(t->max_inputs) +
                          ".");
          }
          if (rule.type.provider == "DeploymentWindow") {
            const std::string& cron = rule.configuration.at("Cron");
            if (!HasVariable(cron)) {
              if (auto parsed = core::ParseCron(cron); !parsed.ok()) {
                return refuse(parsed.status().message());
              }
            }
            auto tz = rule.configuration.find("TimeZone");
            if (tz != rule.configuration.end() && !HasVariable(tz->second)) {
              if (auto off = UtcOffsetSeconds(tz->second, 0); !off.ok()) {
                return refuse(off.status().message());
              }
            }
          }
          if (rule.type.provider == "Commands") {
            if (rule.commands.empty()) {
              return refuse("a Commands rule needs `commands` (1 to 50 shell commands).");
            }
            if (!options_.local_runners) {
              return refuse(
                  "Commands rules run on the server, and this server runs with "
                  "--no-local-runners; use a LambdaInvoke or CloudWatchAlarm rule "
                  "(run by job workers) instead.");
            }
            for (size_t i = 0; i < rule.commands.size(); ++i) {
              if (rule.commands[i].find('\0') != std::string::npos) {
                return refuse("commands[" + std::to_string(i) + "] holds a NUL byte; remove it.");
              }
            }
          } else if (!rule.commands.empty()) {
            return refuse("only Commands rules take `commands`.");
          }
        }
      }
    }
  }
  return Status::Ok();
}

void Engine::PerformRuleLocked(core::PipelineState& p, const core::Effect& fx) {
  core::Execution* e = p.FindExecution(fx.execution_id);
  core::RuleRun* r = e ? e->FindRuleRun(fx.run_id) : nullptr;
  if (r == nullptr) return;
  const core::RuleDecl* rule = FindRuleDecl(p.decl, *r);
  if (rule == nullptr) return;
  const BuiltinActionType* t = FindRuleType(rule->type);
  if (fx.kind == core::Effect::Kind::kAbandonRule) {
    // Jobs of abandoned rules were failed by CommitLocked; a process is killed here.
    if (rule->type.provider == "Commands") {
      if (ActionExecutor* x = ExecutorFor(CommandsActionOf(*rule))) x->Cancel(fx.run_id);
    }
    return;
  }
  if (r->status != core::ActionStatus::kInProgress) return;
  const std::string pipeline = p.decl.name;
  const std::string provider = rule->type.provider;
  PW_LOG(Debug) << "evaluate rule " << r->stage << "/" << r->rule << " " << r->id;
  if (provider == "DeploymentWindow") {
    auto open = WindowOpen(r->resolved_configuration, clock_.Now());
    if (!open.ok()) {
      FailLater(pipeline, r->id, Failure(open.status().message(), "", "ConfigurationError"));
    } else if (*open) {
      core::ActionResult ok;
      ok.summary = "The deployment window is open.";
      FailLater(pipeline, r->id, ok);  // Recorded on a worker thread, like any result.
    }
    return;  // Closed: the ticker checks again every second.
  }
  if (t != nullptr && t->runs == ActionRunner::kWorker) {
    // As a job, like other AWS-owned types without a runner here.
    core::ActionRun as_run;
    as_run.id = r->id;
    as_run.execution_id = e->id;
    as_run.stage = r->stage;
    as_run.action = r->rule;
    as_run.inputs = r->inputs;
    core::ActionDecl a;
    a.name = rule->name;
    // The model's ActionCategory has no "Rule", so workers poll rule jobs as
    // Invoke/AWS/<rule provider>/<version> (no action type has those names).
    a.type = {"Invoke", "AWS", rule->type.provider, rule->type.version};
    a.configuration = r->resolved_configuration;
    a.input_artifacts = rule->input_artifacts;
    a.timeout_minutes = rule->timeout_minutes;
    if (Status s = CreateJobLocked(p, *e, as_run, a, ""); !s.ok()) {
      FailLater(pipeline, r->id, Failure(s.message(), "", "ConfigurationError"));
    }
    return;
  }
  if (provider == "Commands") {
    const core::ActionDecl declared = CommandsActionOf(*rule);
    ActionExecutor* x = ExecutorFor(declared);
    auto shell = ShellCommandsOf(declared, core::VariableScope(p, *e));
    if (x == nullptr || !shell.ok()) {
      FailLater(
          pipeline, r->id,
          Failure(shell.ok() ? "Pipewright has no Commands runner." : shell.status().message(), "",
                  "ConfigurationError"));
      return;
    }
    ActionWork w;
    w.pipeline = pipeline;
    w.execution_id = e->id;
    w.run_id = r->id;
    w.stage = r->stage;
    w.action = r->rule;
    w.decl = declared;
    w.decl.configuration = r->resolved_configuration;
    w.inputs = r->inputs;
    w.commands = std::move(shell->commands);
    w.reference_env = std::move(shell->environment);
    if (!options_.public_url.empty()) {
      r->external_url = options_.public_url + "/logs/" + r->id;
      r->external_id = r->id;
    }
    StartWork(x, std::move(w));
    return;
  }
  FailLater(pipeline, r->id,
            Failure("Pipewright has no runner for rule type " + rule->type.ToString()));
}

void Engine::CheckDeploymentWindowsLocked(EpochSeconds now) {
  std::vector<std::string> names;
  for (const auto& [name, state] : pipelines_) names.push_back(name);
  for (const auto& name : names) {
    auto it = pipelines_.find(name);
    if (it == pipelines_.end()) continue;
    core::PipelineState& p = it->second;
    core::Outcome out;
    for (auto& e : p.executions) {
      if (!e.Active()) continue;
      for (auto& r : e.rule_runs) {
        if (r.status != core::ActionStatus::kInProgress) continue;
        const core::RuleDecl* rule = FindRuleDecl(p.decl, r);
        if (rule == nullptr || rule->type.provider != "DeploymentWindow") continue;
        auto open = WindowOpen(r.resolved_configuration, now);
        if (open.ok() && !*open) continue;
        core::ActionResult result =
            open.ok() ? core::ActionResult{}
                      : Failure(open.status().message(), "", "ConfigurationError");
        if (open.ok()) result.summary = "The deployment window is open.";
        (void)core::CompleteRule(p, r.id, result, now, &out);
      }
    }
    if (out.changed_executions.empty()) continue;
    core::Advance(p, now, *ids_, &out);
    if (Status s = CommitLocked(p, out); !s.ok()) {
      PW_LOG(Warning) << "deployment windows of " << name << " wait for the next tick";
    }
  }
}

void Engine::RecoverRulesLocked(core::PipelineState& p, core::Outcome* out) {
  // A Commands rule's process may have outlived the old server: end it first.
  std::set<std::string> orphans;
  for (const auto& e : p.executions) {
    for (const auto& r : e.rule_runs) {
      if (r.status == core::ActionStatus::kInProgress) orphans.insert(r.id);
    }
  }
  if (!orphans.empty()) (void)runner::KillActionProcesses(orphans);
  for (auto& e : p.executions) {
    for (auto& r : e.rule_runs) {
      if (r.status != core::ActionStatus::kInProgress) continue;
      const core::RuleDecl* rule = FindRuleDecl(p.decl, r);
      if (rule == nullptr) continue;
      const BuiltinActionType* t = FindRuleType(rule->type);
      if (t != nullptr && t->runs == ActionRunner::kWorker) {
        bool has_job = false;
        for (const auto& [id, job] : jobs_) has_job = has_job || (job.run_id == r.id && job.Open());
        if (has_job) continue;  // Jobs survive a restart.
      }
      // Evaluate again: a Commands rule reruns, a window is checked, a job is queued.
      out->effects.push_back({core::Effect::Kind::kStartRule, e.id, r.id});
    }
  }
}

Status Engine::OverrideStageCondition(const std::string& pipeline, const std::string& stage,
                                      const std::string& execution_id, core::ConditionKind kind) {
  MutexLock lock(mu_);
  PW_ASSIGN_OR_RETURN(core::PipelineState * p, LoadLocked(pipeline));
  PW_RETURN_IF_ERROR(EnsureExecutionLocked(*p, execution_id));
  const EpochSeconds now = clock_.Now();
  core::Outcome out;
  PW_RETURN_IF_ERROR(core::OverrideCondition(*p, execution_id, stage, kind, now, &out));
  core::Advance(*p, now, *ids_, &out);
  return CommitLocked(*p, out);
}

}  // namespace pw::engine
