// Stand-in for actions/checkout v5.0.0's post step (it removes the persisted
// credentials; none exist here). It keeps the job's workspace for the test to
// inspect, in CHECKOUT_STANDIN_KEEP/<job id>: act deletes it when the job ends.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const keep = process.env.CHECKOUT_STANDIN_KEEP;
if (keep) {
  const workspace = process.env.GITHUB_WORKSPACE;
  const target = path.join(keep, process.env.GITHUB_JOB);
  fs.mkdirSync(keep, { recursive: true });
  fs.rmSync(target, { recursive: true, force: true });
  fs.renameSync(workspace, target);
  fs.mkdirSync(workspace);
  console.log(`workspace kept in ${target}`);
}
