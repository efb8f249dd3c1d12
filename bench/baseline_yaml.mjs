// Baseline (3): the wizard's value changes made with the JavaScript `yaml` package's Document API.
//
// usage: node bench/baseline_yaml.mjs PLAN.json TREE      (edits TREE in place)
//
// Tuning: parseAllDocuments keeps comments and blank-line markers; an existing scalar node gets its
// new value in place (so it keeps its quoting or block style); a renamed key keeps its node; output
// with lineWidth 0 (no folding), the file's mapping indent and sequence style, no padding inside
// flow collections. Embedded YAML is a nested Document round-trip; JSON goes through JSON.parse /
// JSON.stringify with the file's indent. Non-YAML, non-JSON files get the new text as a whole.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments, isSeq, isScalar } from "yaml";

function guessIndent(text) {
  const maps = new Map();
  const seqs = new Map();
  const bump = (m, k) => m.set(k, (m.get(k) || 0) + 1);
  let parent = null;
  let block = null;
  for (const raw of text.split(/\r?\n/)) {
    const body = raw.replace(/^ +/, "");
    const col = raw.length - body.length;
    if (block !== null) {
      if (!body.trim() || col > block) continue;
      block = null;
    }
    if (!body.trim() || body.startsWith("#") || body.startsWith("---")) continue;
    if (parent !== null && col > parent) bump(body.startsWith("- ") || body === "-" ? seqs : maps, col - parent);
    else if (parent !== null && col === parent && body.startsWith("- ")) bump(seqs, 0);
    const line = body.replace(/\s+#.*$/, "");
    parent = null;
    const dash = /^-\s+/.exec(line);
    const keyCol = dash && dash[0].length < line.length ? col + dash[0].length : col;
    if (/(^|[:\-]\s)[|>][-+0-9]*\s*$/.test(line)) block = col;
    else if (/:\s*$/.test(line)) parent = keyCol;
  }
  const top = (m, d) => [...m.entries()].sort((a, b) => b[1] - a[1])[0]?.[0] ?? d;
  return { indent: top(maps, 2) || 2, indentSeq: top(seqs, 0) > 0 };
}

function guessJsonIndent(text) {
  for (const line of text.split(/\r?\n/).slice(1)) {
    const body = line.replace(/^ +/, "");
    if (body) return line.length - body.length || 2;
  }
  return 2;
}

// --- the plan's ops on plain JS data (JSON) ---
function walkPlain(root, path) {
  for (const k of path) root = root[k];
  return root;
}

function applyPlain(root, changes) {
  for (const ch of changes) {
    if (ch.op === "rename") {
      const o = walkPlain(root, ch.path);
      const entries = Object.entries(o);
      for (const k of Object.keys(o)) delete o[k];
      for (const [k, v] of entries) o[k === ch.from ? ch.to : k] = v;
      continue;
    }
    const parent = walkPlain(root, ch.path.slice(0, -1));
    const last = ch.path[ch.path.length - 1];
    if (ch.op === "set") parent[last] = ch.value;
    else if (ch.op === "del") {
      if (Array.isArray(parent)) parent.splice(last, 1);
      else delete parent[last];
    } else if (ch.op === "embed") parent[last] = roundtripJson(parent[last], ch.changes);
  }
}

function roundtripJson(text, changes) {
  const data = JSON.parse(text);
  applyPlain(data, changes);
  const out = JSON.stringify(data, null, guessJsonIndent(text));
  return text.endsWith("\n") ? out + "\n" : out;
}

// --- the plan's ops on yaml Documents ---
function walkNode(node, path) {
  for (const k of path) node = node.get(k, true);
  return node;
}

function applyDoc(docs, changes) {
  for (const ch of changes) {
    const doc = docs[ch.path[0]];
    const rest = ch.path.slice(1);
    if (ch.op === "rename") {
      const map = rest.length ? walkNode(doc.contents, rest) : doc.contents;
      const pair = map.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === ch.from);
      if (isScalar(pair.key)) pair.key.value = ch.to;
      else pair.key = ch.to;
      continue;
    }
    const parent = rest.length > 1 ? walkNode(doc.contents, rest.slice(0, -1)) : doc.contents;
    const last = rest[rest.length - 1];
    const node = parent.get(last, true);
    if (ch.op === "set") {
      const scalarValue = ch.value === null || typeof ch.value !== "object";
      if (isScalar(node) && scalarValue) node.value = ch.value;
      else if (isSeq(parent) && last === parent.items.length) parent.add(doc.createNode(ch.value));
      else parent.set(last, doc.createNode(ch.value));
    } else if (ch.op === "del") {
      parent.delete(last);
    } else if (ch.op === "embed") {
      const text = String(node.value);
      node.value = ch.format === "yaml" ? roundtripYaml(text, ch.changes) : roundtripJson(text, ch.changes);
    }
  }
}

function roundtripYaml(text, changes) {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) return text; // an empty stream
  for (const d of docs) if (d.errors.length) throw new Error(d.errors[0].message);
  applyDoc(docs, changes);
  const { indent, indentSeq } = guessIndent(text);
  const opts = { lineWidth: 0, minContentWidth: 0, indent, indentSeq, flowCollectionPadding: false };
  return docs.map((d) => d.toString(opts)).join("");
}

const plan = JSON.parse(readFileSync(process.argv[2], "utf8"));
const tree = process.argv[3];
for (const [rel, fp] of Object.entries(plan)) {
  const path = join(tree, rel);
  let out;
  if (fp.format === "text") out = fp.changes[0].value;
  else {
    const text = readFileSync(path, "utf8");
    out = fp.format === "yaml" ? roundtripYaml(text, fp.changes) : roundtripJson(text, fp.changes);
  }
  writeFileSync(path, out);
}
