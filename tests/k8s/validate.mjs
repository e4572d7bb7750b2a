// Validates Kubernetes manifests against the Kubernetes API's published OpenAPI schema, as
// the npm package kubernetes-models carries it (a model per kind, each with the schema's
// validator), for tests/e2e/k8s_test.lua. Usage: node validate.mjs FILE...
// Prints "FILE: KIND/NAME ok" per document, or "FILE:LINE: KIND/NAME: what is wrong" per
// fault, and exits 1 when any document is bad (unparsable YAML, an unknown kind, a value
// the schema refuses).
import { readFileSync } from "node:fs";
import { parseAllDocuments, LineCounter } from "yaml";

let bad = 0;
function fault(where, msg) {
  console.log(where + ": " + msg);
  bad++;
}

// "apps/v1" + Deployment -> kubernetes-models/apps/v1/Deployment; "v1" -> kubernetes-models/v1/...
async function model(apiVersion, kind) {
  if (typeof apiVersion !== "string" || !/^[a-z0-9.]+(\/[a-z0-9]+)?$/.test(apiVersion)) return null;
  if (typeof kind !== "string" || !/^[A-Z][A-Za-z0-9]*$/.test(kind)) return null;
  try {
    const mod = await import("kubernetes-models/" + apiVersion + "/" + kind);
    return mod[kind] || null;
  } catch {
    return null;
  }
}

for (const file of process.argv.slice(2)) {
  const lines = new LineCounter();
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { lineCounter: lines });
  for (const doc of docs) {
    const line = lines.linePos(doc.range[0]).line;
    if (doc.errors.length > 0) {
      fault(file + ":" + line, doc.errors[0].message);
      continue;
    }
    const obj = doc.toJS();
    if (obj === null || obj === undefined) continue; // an empty document between separators
    const name = (obj.kind || "?") + "/" + ((obj.metadata && obj.metadata.name) || "?");
    const Model = await model(obj.apiVersion, obj.kind);
    if (!Model) {
      fault(file + ":" + line, name + ": no schema for apiVersion " + obj.apiVersion + " kind " + obj.kind);
      continue;
    }
    try {
      new Model(obj).validate();
      console.log(file + ": " + name + " ok");
    } catch (e) {
      fault(file + ":" + line, name + ": " + e.message);
    }
  }
}
process.exit(bad > 0 ? 1 : 0);
