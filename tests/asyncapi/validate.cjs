// Validates an AsyncAPI document with the official JavaScript parser
// (@asyncapi/parser, installed by scripts/asyncapi-parser) and prints its
// diagnostics as JSON: {"errors": [...], "warnings": [...], "channels": N,
// "operations": N, "messages": N}. Exit 0 when the document parses without
// errors, 1 otherwise, 2 on a usage or I/O error.
//
//   TIDINGS_ASYNCAPI_MODULES=<node_modules> node validate.cjs FILE
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const file = process.argv[2];
  const modules = process.env.TIDINGS_ASYNCAPI_MODULES;
  if (!file || !modules) {
    console.error('usage: TIDINGS_ASYNCAPI_MODULES=<node_modules> node validate.cjs FILE');
    process.exit(2);
  }
  const { Parser, DiagnosticSeverity } = require(path.join(modules, '@asyncapi/parser'));
  const parser = new Parser();
  const { document, diagnostics } = await parser.parse(fs.readFileSync(file, 'utf8'));
  const describe = (d) => ({ code: d.code, message: d.message, path: (d.path || []).join('/') });
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error).map(describe);
  const warnings = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Warning).map(describe);
  const report = { errors, warnings };
  if (document) {
    report.channels = document.channels().length;
    report.operations = document.operations().length;
    report.messages = document.messages().length;
  }
  console.log(JSON.stringify(report));
  process.exit(errors.length === 0 && document ? 0 : 1);
}

main().catch((error) => {
  console.error(`validate.cjs: ${error && error.stack ? error.stack : error}`);
  process.exit(2);
});
