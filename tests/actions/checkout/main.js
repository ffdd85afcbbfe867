// Stand-in for actions/checkout v5.0.0 in the template's tests (action.yml).
// The git commands are the real action's (src/git-source-provider.ts,
// src/git-command-manager.ts, src/ref-helper.ts at that commit): init, add
// the remote, fetch the pushed commit with the asked depth (all branches and
// tags for fetch-depth 0), check the branch out.
"use strict";
const { execFileSync } = require("node:child_process");
const fs = require("node:fs");

function input(name) {
  return (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] || "").trim();
}

function refuse(name, why) {
  console.log(`::error::checkout stand-in: input '${name}' ${why} (tests/actions/checkout)`);
  process.exit(1);
}

// Played: fetch-depth, fetch-tags. Nothing to do here: token, persist-credentials
// (no credentials exist on the test machine), clean (the workspace is new),
// show-progress, set-safe-directory, ssh-strict, ssh-user (no ssh).
const unplayed = { ref: "", "ssh-key": "", "ssh-known-hosts": "", path: "", filter: "",
  "sparse-checkout": "", lfs: "false", submodules: "false", "github-server-url": "" };
for (const [name, expected] of Object.entries(unplayed)) {
  if (input(name) !== expected) refuse(name, "is not played by the tests");
}
if (input("repository") !== process.env.GITHUB_REPOSITORY) {
  refuse("repository", "names another repository: only the workflow's own is played");
}
const remote = process.env.CHECKOUT_STANDIN_REMOTE;
if (!remote) refuse("(CHECKOUT_STANDIN_REMOTE)", "needs the test's repository to fetch from");

const workspace = process.env.GITHUB_WORKSPACE;
const commit = process.env.GITHUB_SHA;
const ref = process.env.GITHUB_REF;
if (!ref.startsWith("refs/heads/")) refuse("(GITHUB_REF)", `${ref}: only branch pushes are played`);
const branch = ref.substring("refs/heads/".length);
const depth = Number.parseInt(input("fetch-depth") || "1", 10);

function git(...args) {
  console.log(`[command]git ${args.join(" ")}`);
  execFileSync("git", args, { cwd: workspace, stdio: "inherit" });
}

fs.mkdirSync(workspace, { recursive: true });
git("init", workspace);
git("remote", "add", "origin", `file://${remote}`);
const fetch = ["-c", "protocol.version=2", "fetch"];
if (depth <= 0) {
  fetch.push("--prune", "--no-recurse-submodules", "origin",
    "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*");
} else {
  if (input("fetch-tags") !== "true") fetch.push("--no-tags");
  fetch.push("--prune", "--no-recurse-submodules", `--depth=${depth}`, "origin",
    `+${commit}:refs/remotes/origin/${branch}`);
}
git(...fetch);
git("checkout", "--progress", "--force", "-B", branch, `refs/remotes/origin/${branch}`);
fs.appendFileSync(process.env.GITHUB_OUTPUT, `ref=${ref}\ncommit=${commit}\n`);
