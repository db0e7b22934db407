#!/usr/bin/env node
// pscheck parses PowerShell files with the tree-sitter PowerShell grammar
// (the .wasm shipped in tree-sitter-powershell, loaded by web-tree-sitter,
// no network, no native build) and reports every ERROR or MISSING node.
// Exit status: 0 clean, 1 syntax errors found, 2 usage or setup failure.
'use strict';

const v8 = require('v8');
// Baseline-compile the grammar: optimising its wasm takes ~10 s of CPU
// for a parse that needs milliseconds.
v8.setFlagsFromString('--liftoff-only');

const fs = require('fs');
const path = require('path');
const { Parser, Language } = require('web-tree-sitter');

function grammarPath() {
  const pkg = require.resolve('tree-sitter-powershell/package.json');
  return path.join(path.dirname(pkg), 'tree-sitter-powershell.wasm');
}

// problems walks the whole tree (a syntax error can hide below a node that
// is itself fine) and returns one line per ERROR or MISSING node.
function problems(tree, file) {
  const out = [];
  const cursor = tree.walk();
  let descend = true;
  for (;;) {
    const node = cursor.currentNode;
    if (descend && (node.isError || node.isMissing)) {
      const p = node.startPosition;
      const kind = node.isMissing ? `MISSING ${node.type}` : 'ERROR';
      const text = node.text.split('\n')[0].slice(0, 60);
      out.push(`${file}:${p.row + 1}:${p.column + 1}: ${kind}${text ? ` near ${JSON.stringify(text)}` : ''}`);
    }
    if (descend && cursor.gotoFirstChild()) continue;
    if (cursor.gotoNextSibling()) { descend = true; continue; }
    if (!cursor.gotoParent()) break;
    descend = false;
  }
  return out;
}

async function main(files) {
  if (files.length === 0) {
    console.error('usage: pscheck FILE.ps1...');
    return 2;
  }
  await Parser.init();
  const language = await Language.load(fs.readFileSync(grammarPath()));
  const parser = new Parser();
  parser.setLanguage(language);
  let bad = 0;
  for (const file of files) {
    let source = fs.readFileSync(file, 'utf8');
    if (source.charCodeAt(0) === 0xfeff) source = source.slice(1);
    const tree = parser.parse(source);
    const found = problems(tree, file);
    if (tree.rootNode.hasError && found.length === 0) {
      found.push(`${file}: parse error (tree has errors but no ERROR/MISSING node was located)`);
    }
    for (const line of found) console.log(line);
    if (found.length > 0) bad++;
    else console.log(`${file}: ok`);
    tree.delete();
  }
  return bad > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => { console.error(`pscheck: ${err && err.stack ? err.stack : err}`); process.exit(2); },
);
