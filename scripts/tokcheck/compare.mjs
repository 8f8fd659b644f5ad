// compare.mjs checks qins' ids against Tokenizers.js' for one vocabulary:
//   node compare.mjs CORPUS EXPECTED GOT [--bos ID]
// Each file has one line per corpus line. It prints each line whose ids
// differ, with both tokenizations, and exits 1 when any does. --bos ID:
// qins puts BOS ID in front of every line and Tokenizers.js does not
// (transformers' LlamaTokenizerFast applies add_bos_token, Tokenizers.js
// only the file's post-processor); the leading ID is checked, then dropped.
import { readFileSync } from "node:fs";

const [corpusPath, expPath, gotPath, flag, bosArg] = process.argv.slice(2);
const lines = (p) => readFileSync(p, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
const corpus = lines(corpusPath);
const exp = lines(expPath);
const got = lines(gotPath);
const bos = flag === "--bos" ? Number(bosArg) : null;
if (exp.length !== corpus.length || got.length !== corpus.length) {
  console.log(`  ${corpus.length} corpus lines, ${exp.length} expected, ${got.length} from qins`);
  process.exit(1);
}
let bad = 0;
corpus.forEach((text, i) => {
  let ids = got[i].ids;
  let pieces = got[i].pieces;
  if (bos !== null) {
    if (ids[0] !== bos) {
      console.log(`  line ${i + 1}: no BOS ${bos} in front`);
      bad++;
      return;
    }
    ids = ids.slice(1);
    pieces = pieces.slice(1);
  }
  if (JSON.stringify(ids) === JSON.stringify(exp[i].ids)) return;
  bad++;
  console.log(`  line ${i + 1}: ${JSON.stringify(text)}`);
  console.log(`    Tokenizers.js ${JSON.stringify(exp[i].pieces)} ${JSON.stringify(exp[i].ids)}`);
  console.log(`    qins          ${JSON.stringify(pieces)} ${JSON.stringify(ids)}`);
});
console.log(`  ${corpus.length - bad} of ${corpus.length} lines equal`);
process.exit(bad ? 1 : 0);
