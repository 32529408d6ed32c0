// Records, beside the build, a hash of the sources it was built from (and of each built file), so that
// tests/unit/test_web_build.py fails when web/ changed and the committed build in the package was not rebuilt.
// The test computes the same file list and hash in Python.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

const WEB = fileURLToPath(new URL("..", import.meta.url));
const OUT = join(WEB, "..", "core", "src", "llm_router", "gateway", "static");
const ROOT_FILES = ["index.html", "package.json", "package-lock.json", "tsconfig.json", "vite.config.ts"];
const DIRS = ["src", "public", "scripts"];

function walk(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });
}

const sha = (data) => createHash("sha256").update(data).digest("hex");
const posix = (path) => path.split(sep).join("/");

function digest(base, files) {
  const lines = files
    .map((f) => posix(relative(base, f)))
    .sort()
    .map((rel) => `${rel}\0${sha(readFileSync(join(base, rel)).toString("utf8").replace(/\r\n/g, "\n"))}\n`);
  return sha(lines.join(""));
}

const sources = [...ROOT_FILES.map((f) => join(WEB, f)), ...DIRS.flatMap((d) => walk(join(WEB, d)))];
const built = walk(OUT).filter((f) => !f.endsWith("BUILD-SOURCE.json"));
const stamp = {
  comment: "written by web/scripts/stamp.mjs (nox -s web); checked by tests/unit/test_web_build.py",
  sources_sha256: digest(WEB, sources),
  build_sha256: digest(OUT, built),
  files: built.map((f) => posix(relative(OUT, f))).sort(),
};
writeFileSync(join(OUT, "BUILD-SOURCE.json"), JSON.stringify(stamp, null, 2) + "\n");
console.log(`stamp: sources ${stamp.sources_sha256.slice(0, 12)}, ${stamp.files.length} built files`);
