#!/usr/bin/python3
"""Writes the seed corpus of the dispatch fuzzer into fuzz/corpus/: one file per
realistic request below, as <target index byte><JSON body>. The index comes from
the fuzzer itself (PW_FUZZ_PRINT_TARGETS=1), so seeds follow the registered
targets. Crash regression seeds (crash-*) are raw inputs and are left alone.

  fuzz/make_corpus.py build-fuzz/fuzz/dispatch_fuzzer
"""

import json
import os
import subprocess
import sys

UUID = "3137f7cb-7cf7-4a3e-9b1e-0123456789ab"
ROLE = "arn:aws:iam::123456789012:role/pipewright"
ARN = "arn:aws:codepipeline:us-east-1:123456789012:fz"


def action(name, category, owner, provider, config=None, inputs=(), outputs=(), run_order=1,
           namespace=None):
    a = {"name": name, "runOrder": run_order,
         "actionTypeId": {"category": category, "owner": owner, "provider": provider,
                          "version": "1"},
         "inputArtifacts": [{"name": i} for i in inputs],
         "outputArtifacts": [{"name": o} for o in outputs]}
    if config is not None:
        a["configuration"] = config
    if namespace:
        a["namespace"] = namespace
    return a


def pipeline(name, mode="SUPERSEDED", variables=None, on_failure=None):
    stages = [
        {"name": "Source", "actions": [action("Src", "Source", "Custom", "FuzzSource",
                                              {"Label": "x"}, outputs=["SourceOut"],
                                              namespace="SourceVariables")]},
        {"name": "Build", "actions": [
            action("Make", "Build", "AWS", "Commands",
                   {"Commands": "echo #{SourceVariables.Label}\nmake"}, inputs=["SourceOut"],
                   outputs=["BuildOut"]),
            action("Lint", "Test", "AWS", "Commands", {"Commands": "true"},
                   inputs=["SourceOut"], run_order=2)]},
        {"name": "Approve", "actions": [action("Gate", "Approval", "AWS", "Manual",
                                               {"CustomData": "ok?"})]},
    ]
    if on_failure:
        stages[1]["onFailure"] = {"result": on_failure}
    p = {"name": name, "roleArn": ROLE, "version": 1, "executionMode": mode,
         "pipelineType": "V2", "artifactStore": {"type": "S3", "location": "fuzz-bucket"},
         "stages": stages}
    if variables:
        p["variables"] = variables
    return p


REQUESTS = [
    ("CreateCustomActionType", "source-type", {
        "category": "Source", "provider": "FuzzSource", "version": "1",
        "settings": {"entityUrlTemplate": "https://example.com/{Config:Label}"},
        "configurationProperties": [{"name": "Label", "required": True, "key": True,
                                     "secret": False, "queryable": True, "type": "String"}],
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 0},
        "outputArtifactDetails": {"minimumCount": 1, "maximumCount": 1},
        "tags": [{"key": "team", "value": "ci"}]}),
    ("CreateCustomActionType", "build-type", {
        "category": "Build", "provider": "FuzzBuild", "version": "1",
        "configurationProperties": [{"name": "Token", "required": True, "key": False,
                                     "secret": True}],
        "inputArtifactDetails": {"minimumCount": 0, "maximumCount": 5},
        "outputArtifactDetails": {"minimumCount": 0, "maximumCount": 5}}),
    ("CreatePipeline", "three-stages", {"pipeline": pipeline("fz"),
                                        "tags": [{"key": "env", "value": "test"}]}),
    ("CreatePipeline", "queued-variables", {"pipeline": pipeline(
        "fzq", "QUEUED", [{"name": "Env", "defaultValue": "dev", "description": "target"}],
        "RETRY")}),
    ("CreatePipeline", "parallel", {"pipeline": pipeline("fzp", "PARALLEL")}),
    ("CreatePipeline", "null-tags", {"pipeline": pipeline("fzn"), "tags": None}),
    ("UpdatePipeline", "mode", {"pipeline": pipeline("fz", "QUEUED")}),
    ("GetPipeline", "current", {"name": "fz"}),
    ("GetPipeline", "version", {"name": "fz", "version": 1}),
    ("ListPipelines", "page", {"maxResults": 2}),
    ("ListPipelines", "token", {"nextToken": "pw1.667a"}),
    ("DeletePipeline", "delete", {"name": "fzp"}),
    ("StartPipelineExecution", "start", {"name": "fz", "clientRequestToken": "tok-1"}),
    ("StartPipelineExecution", "variables", {"name": "fzq",
                                             "variables": [{"name": "Env", "value": "prod"}]}),
    ("StopPipelineExecution", "stop", {"pipelineName": "fz", "pipelineExecutionId": UUID,
                                       "abandon": True, "reason": "fuzz"}),
    ("GetPipelineExecution", "get", {"pipelineName": "fz", "pipelineExecutionId": UUID}),
    ("ListPipelineExecutions", "list", {"pipelineName": "fz", "maxResults": 5,
                                        "filter": {"succeededInStage": {"stageName": "Build"}}}),
    ("GetPipelineState", "state", {"name": "fz"}),
    ("ListActionExecutions", "list", {"pipelineName": "fz", "maxResults": 10,
                                      "filter": {"pipelineExecutionId": UUID}}),
    ("RetryStageExecution", "failed", {"pipelineName": "fz", "stageName": "Build",
                                       "pipelineExecutionId": UUID,
                                       "retryMode": "FAILED_ACTIONS"}),
    ("RetryStageExecution", "all", {"pipelineName": "fz", "stageName": "Source",
                                    "pipelineExecutionId": UUID, "retryMode": "ALL_ACTIONS"}),
    ("RollbackStage", "rollback", {"pipelineName": "fz", "stageName": "Build",
                                   "targetPipelineExecutionId": UUID}),
    ("GetStageRetryPlan", "plan", {"pipelineName": "fz", "stageName": "Build",
                                   "pipelineExecutionId": UUID}),
    ("DisableStageTransition", "inbound", {"pipelineName": "fz", "stageName": "Build",
                                           "transitionType": "Inbound",
                                           "reason": "Hold (fuzz)"}),
    ("EnableStageTransition", "outbound", {"pipelineName": "fz", "stageName": "Source",
                                           "transitionType": "Outbound"}),
    ("PutApprovalResult", "approve", {"pipelineName": "fz", "stageName": "Approve",
                                      "actionName": "Gate",
                                      "result": {"summary": "fine", "status": "Approved"},
                                      "token": UUID}),
    ("ListActionTypes", "custom", {"actionOwnerFilter": "Custom"}),
    ("GetActionType", "commands", {"category": "Build", "owner": "AWS", "provider": "Commands",
                                   "version": "1"}),
    ("GetActionType", "custom", {"category": "Source", "owner": "Custom",
                                 "provider": "FuzzSource", "version": "1"}),
    ("PollForJobs", "custom", {"actionTypeId": {"category": "Source", "owner": "Custom",
                                                "provider": "FuzzSource", "version": "1"},
                               "maxBatchSize": 2, "queryParam": {"Label": "x"}}),
    ("PollForJobs", "commands", {"actionTypeId": {"category": "Build", "owner": "AWS",
                                                  "provider": "Commands", "version": "1"}}),
    ("AcknowledgeJob", "ack", {"jobId": UUID, "nonce": "1"}),
    ("GetJobDetails", "get", {"jobId": UUID}),
    ("PutJobSuccessResult", "full", {
        "jobId": UUID, "continuationToken": "step-2",
        "currentRevision": {"revision": "abc123", "changeIdentifier": "c1",
                            "created": 1700000000, "revisionSummary": "fix"},
        "executionDetails": {"summary": "ok", "externalExecutionId": "e-1",
                             "percentComplete": 50},
        "outputVariables": {"Label": "v1", "Commit@id": "abc"}}),
    ("PutJobFailureResult", "fail", {"jobId": UUID, "failureDetails": {
        "type": "JobFailed", "message": "boom", "externalExecutionId": "e-2"}}),
    ("DeleteCustomActionType", "delete", {"category": "Build", "provider": "FuzzBuild",
                                          "version": "1"}),
    ("TagResource", "tag", {"resourceArn": ARN, "tags": [{"key": "a", "value": "b"},
                                                         {"key": "c", "value": ""}]}),
    ("UntagResource", "untag", {"resourceArn": ARN, "tagKeys": ["a"]}),
    ("ListTagsForResource", "list", {"resourceArn": ARN, "maxResults": 1}),
]


def main():
    fuzzer = sys.argv[1]
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    listing = subprocess.run([fuzzer], env=dict(os.environ, PW_FUZZ_PRINT_TARGETS="1"),
                             capture_output=True, text=True, check=True).stdout
    index = {}
    for line in listing.splitlines():
        i, target = line.split(" ", 1)
        index[target.split(".", 1)[1]] = int(i)
    os.makedirs(out, exist_ok=True)
    for op, name, body in REQUESTS:
        if op not in index:
            sys.exit("make_corpus: %s is not a registered target" % op)
        with open(os.path.join(out, "%s-%s" % (op, name)), "wb") as f:
            f.write(bytes([index[op]]) + json.dumps(body, separators=(",", ":")).encode())
    print("make_corpus: %d seeds in %s" % (len(REQUESTS), out))


if __name__ == "__main__":
    main()
