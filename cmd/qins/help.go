package main

// The long help of each command, printed by `qins help COMMAND` and
// `qins COMMAND --help` under DESCRIPTION. Plain text, wrapped by hand:
// urfave/cli indents every line by three spaces and does not rewrap.

const convertHelp = `Convert encodes the large floating-point tensors of a checkpoint into
QINS: each weight becomes a uint8 log-magnitude code and a sign, with a log
range per row (or per tensor). The output is itself a safetensors file, or
a model folder of them; every other tensor is copied byte for byte. Memory
stays at a few tens of MB whatever the size of the model.

SRC is a .safetensors file, a model folder, or a *.safetensors.index.json.
A folder is read through its model.safetensors.index.json (or its only
index, or its only .safetensors file). An index is checked both ways:
every listed tensor is in its shard, every shard tensor is listed, every
shard exists, and no shard path leaves the folder (symlinked shards, as in
the Hugging Face cache, are fine). Flags go before or after SRC.

OUTPUT NAMES
  Without -o, a folder or an index converts to the folder <folder>.qins/
  beside it, and a file to <name>.qins.safetensors beside it. A snapshot
  of the Hugging Face cache (.../models--ORG--NAME/snapshots/REV/)
  converts to NAME.qins/ in the current folder, not into the cache.
  -o OUT names a folder when OUT is an existing folder, ends in /, ends in
  .qins or .restored, or, when SRC is a folder or an index, does not end
  in .safetensors; otherwise one file (qins convert phi/ -o
  phi.safetensors writes a single file). A file SRC with a folder output
  gives a folder holding only the weights.

THE QINS FOLDER
  It holds model.qins.safetensors or, above --max-shard-size, shards
  model.qins-00001-of-0000N.safetensors with
  model.qins.safetensors.index.json; each shard is a complete QINS file.
  The other files of SRC (config, generation config, tokenizer, chat
  template, licence, README, *.py, in subfolders too) are copied byte for
  byte with their modes. Left out: hidden files, the checkpoint's own
  weights and index, and weights in any format (*.safetensors,
  pytorch_model*.bin, *.pt, *.pth, *.ckpt, *.gguf, *.h5, *.msgpack,
  *.onnx, *.tflite, *.ot).
  Side files are copied only when safe to publish: a symbolic link is
  followed only inside the model folder (not into a hidden file of it)
  or, inside a Hugging Face cache snapshot, to a file of that repository's
  blobs/; any other link, or a dangling one, is an error naming it and its
  target (--skip-outside-links leaves such files out, with a warning).
  Only regular files, exactly their size, at most --max-side-file (1GiB)
  each, --max-side-total (4GiB) together and 65,536 files and folders;
  each folder is entered once (a loop is an error); each file is checked
  again when opened and just before the folder is committed.

WHAT IS ENCODED
  By default every F16, BF16, F32 or F64 tensor of rank 2 or more (for
  Phi-3.5: embed_tokens, lm_head and every projection). Everything else
  is copied byte for byte: other dtypes (FP8, FP6, FP4, integers...) and
  the scales beside FP8, FP6 and FP4 tensors (NAME_scale, NAME_scale_inv).
  --include REGEX  encode exactly the floating-point tensors whose names
                   match, whatever their rank.
  --exclude REGEX  keep the matching tensors unchanged; wins over
                   --include.
  If an encoded tensor's parts would take the name of another source
  tensor (x beside x.qins), convert stops before writing and names both,
  with the --exclude '^x$' that keeps x unchanged.

ENCODING
  By default the log codec stores a code byte and a sign bit per weight
  (--layout packed), with one log range per row (--granularity row) whose
  log_min is chosen for the least squared error (--range mse): 9.02 bits
  per weight on Phi-3.5 (0.564x a BF16 source), 9.87 on stories260K's
  short rows, for a tenth of the reference encoding's mean KLD. Each flag
  below overrides its part and keeps the rest of the default.
  --reference      the reference implementation's encoding, 16 bits per
                   weight: --codec log --layout u8+i8 --granularity tensor
                   --range minmax. A flag that contradicts it is a usage
                   error; flags that agree with it are fine.
  --layout packed  a code byte and a sign bit: 1.125 bytes per weight, a
                   BF16 checkpoint 1.78x smaller (the default).
  --layout u8+i8   a code byte and a sign byte per weight: 2 bytes, the
                   size of BF16. Same decoded values as packed.
  --layout i8      one I8 per weight: 0 for an exact zero, else the sign
                   times a 7-bit log code 1..127 (the formula with 127
                   levels: round(127 - 126 (ln|w| - log_min) / (log_max -
                   log_min)); magnitudes at or below 1e-8 get 127). 1 byte
                   per weight, no sign tensor, QINS version 3. Half the
                   levels of the 8-bit code, so about twice its error;
                   with --range mse log_min is chosen for the least
                   squared error with 127 levels; with --granularity row
                   each row's range is in NAME.logrange, as for the 8-bit
                   code. Not with --codec rational.
  --range mse      keep log_max, choose log_min for the least squared
                   error: on Normal-like weights it halves the error.
                   Every decoder reads such files (the default).
  --range minmax   the log range from the smallest magnitude above 1e-8
                   to the largest.
  --granularity row
                   one log range per row of the last dimension (for a
                   Linear weight [out, in], per output), in NAME.logrange
                   (QINS version 2). Two float32 per row: under 0.03 bits
                   per weight for rows of 3072, 1 bit for rows of 64, 4
                   bits for rows of 16. With --range mse each row gets its
                   own best log_min (the default for --codec log, where
                   the ranges take at most 1 bit per weight over the
                   checkpoint: rows of 64 weights or more; on shorter
                   rows, as in LoRA adapters and convolutions, the
                   default takes one range per tensor and the summary
                   says so; --granularity row keeps them per row).
  --granularity tensor
                   one log range (or alpha) per tensor: the default on
                   short rows, and with --alpha.
  --codec log      the log-magnitude code above, a code and a sign per
                   weight (the default; QINS version 1, 2 or 3).
  --codec rational the rational code of dkeviv/Cogumi-IntLLM: z =
                   sign(w)/(1+alpha*|w|) stored as round((z+1)*127.5),
                   one byte per weight with the sign inside, one alpha
                   per tensor (QINS version 3). Its codes are the
                   reference's, computed in float32, but for exact zeros:
                   +0 and -0 get 255 and 0 and decode to zeros (the
                   reference gives 128, which decodes to +254/alpha), and
                   no weight changes sign. It takes no --layout. By
                   default (--granularity row, as for the log codec's
                   ranges) each row of the last dimension gets the alpha
                   of its least squared error, in NAME.alpha (QINS
                   version 4; a float32 per row): rows of up to 256
                   searched on their exact error, longer ones on a model
                   of it, exact for their few largest weights (and up to
                   2048 checked on their exact error around its pick).
  --alpha A        the rational codec's alpha for every tensor (finite,
                   above 0; rounded to float32; not with --granularity
                   row). Without it (or with --range mse) each tensor
                   gets the alpha of its least squared error, a search on
                   log alpha over the tensor's values (exact per bit
                   pattern for 16-bit tensors): several times less error
                   than --alpha 1 on small weights. The summary's codec:
                   line gives the alphas.
  The summary's encoding: line says what was chosen, by which flags (or
  "the default"), and the bits per encoded weight its tensors take:
  codes, signs and per-row ranges or alphas, as written. See go doc
  github.com/qins-dev/qins/quant for the codec and go doc
  github.com/qins-dev/qins/format/qins for the file.

SHARDS
  --max-shard-size SIZE  default 5GB; also 500MB, 2GiB or a number of
                   bytes (GB and MB are powers of 1000, GiB and MiB of
                   1024). A tensor larger than the limit gets a shard of
                   its own.

OUTPUT SAFETY
  The output is built aside, synced, and named only when complete; on an
  error, a full disk, SIGINT or SIGTERM nothing is left behind. Without
  --force an existing output is an error. --force replaces a regular file,
  or a folder that holds a safetensors model (the whole folder); never an
  input, a folder that holds one, or any other folder. Every input is
  checked again before the output is committed: if it changed during the
  run, the command fails.

EXIT STATUS
  0 done; 1 an error (one line naming the file, and the tensor); 2 a usage
  error; 130 or 143 after SIGINT or SIGTERM.

EXAMPLES
  qins convert Phi-3.5-mini-instruct/
  qins convert Phi-3.5-mini-instruct/ -o phi-ref --reference
  qins convert adapter_model.safetensors --granularity row
  qins convert model.safetensors --layout i8
  qins convert model.safetensors --codec rational
  qins convert model.safetensors --codec rational --granularity row
  qins convert phi/ -o phi.safetensors --exclude 'embed_tokens|lm_head'`

const restoreHelp = `Restore decodes a QINS file or folder into plain safetensors. Every encoded
tensor is decoded to --dtype (computed in float64, rounded once); copied
F16, BF16, F32 and F64 tensors are cast to the same dtype, but for the
scales of FP8, FP6 and FP4 tensors; tensors of other dtypes are copied
unchanged. The original names, shapes and metadata come back.

IN is a QINS file, a QINS folder, or its index. Flags go before or after
IN.

OUTPUT NAMES
  Without -o, a QINS folder X.qins/ restores to X.restored/ beside it (a
  folder not named .qins gets .restored added); a single file needs -o.
  -o OUT names a folder by convert's rules: an existing folder, a
  trailing /, a name ending in .qins or .restored, or, for a folder or
  index input, a name not ending in .safetensors.

THE RESTORED FOLDER
  An ordinary Hugging Face model folder: model.safetensors, or shards
  model-00001-of-0000N.safetensors with model.safetensors.index.json,
  split by --max-shard-size (default 5GB). Shards carry "format": "pt".
  config.json gets the restored dtype: the value of every "torch_dtype"
  (nested configs too) and of a top-level "dtype" is replaced where it
  stands, the rest of the file kept byte for byte; "torch_dtype" is added
  when the top level has neither. The other files are copied under the
  same rules as convert's (see qins help convert), with the same flags.

OPTIONS
  --dtype F32|F16|BF16|F64
                   the dtype of the floating-point tensors (default F32).
                   A tensor with a value that does not fit (above 65504
                   for F16) is an error naming it, not a file of
                   infinities: restore to a wider dtype.

UNMARKED PARTS
  Only a qins:NAME metadata entry marks NAME as encoded; any other tensor
  is copied as it is. When a file holds NAME.qins (U8) with NAME.sign (I8
  of the same shape) or NAME.signbits, but no qins:NAME entry, restore
  copies them and warns on stderr (even with --quiet): the file may have
  lost its metadata.

OUTPUT SAFETY
  As for convert: built aside, named only when complete, nothing left on
  an error or a signal, --force needed to replace, an input never replaced.

EXIT STATUS
  0 done; 1 an error (one line naming the file, and the tensor); 2 a usage
  error; 130 or 143 after SIGINT or SIGTERM.

EXAMPLES
  qins restore Phi-3.5-mini-instruct.qins --dtype BF16
  qins restore model.qins.safetensors -o model.safetensors`

const inspectHelp = `Inspect lists each tensor of a QINS file or folder, or of any safetensors
file, folder or index: name, dtype (the source dtype for encoded tensors),
shape, stored bytes, whether it is encoded, log_min and log_max, then
totals.

For a per-row tensor (convert --granularity row) the stored bytes include
its ranges, log_min and log_max are the envelope of its rows', and a last
column gives the smallest, median and largest span log_max - log_min over
its rows (every row's range is read and checked).

  --json  print one object; per-row tensors add granularity, rows and
          span {min, median, max}.

EXIT STATUS
  0 done; 1 an input that cannot be read (one line naming the file, and
  the tensor); 2 a usage error.

EXAMPLES
  qins inspect tiny.qins.safetensors
  qins inspect Phi-3.5-mini-instruct.qins --json`

const diffHelp = `Diff compares two checkpoints tensor by tensor, by value, across dtypes (a
BF16 original against its F32 restore, say). Either side may be a file, a
folder, an index, or a QINS file or folder, which is decoded on the fly
exactly as qins restore writes it (F32): no restore step is needed.

For each tensor: elements, max_abs_err and the flat index where it occurs,
mean_abs_err, rmse, rel_rmse (rmse / RMS of A), cosine similarity, snr_db
(10 log10(sum a^2 / sum (a-b)^2); "exact" when nothing differs, null in
JSON with "exact": true) and the number of identical elements. Then totals
over the model, the tensors missing on either side, and the tensors whose
shapes (or non-float dtypes) differ. Sums are in float64, merged in a
fixed order, so the figures do not depend on scheduling.

Integer and BOOL tensors must match exactly. FP8 E4M3 and E5M2 compare by
value, decoded per the OCP definitions; F8_E8M0, the FNUZ FP8s, FP6, FP4
and C64 compare by bits and must be equal (their value measures are - in
the table and null in JSON).

OPTIONS
  --max-rel-rmse X, --min-snr-db Y, --min-cosine Z
                   thresholds, applied to every tensor (none by default).
  --top N          the N tensors furthest apart in the table (default 20,
                   0 none, -1 all).
  --json           one JSON object instead of the table.
  --plot FILE.png  also draw the SNR of each tensor by layer, one marker
                   per kind of tensor. The name must end in .png; an
                   existing file is replaced only with --force, an input
                   never.

EXIT STATUS
  0 every tensor is on both sides and within the thresholds; 1 otherwise
  (the report is printed); 2 an input cannot be read, or the report
  cannot be written; 130 or 143 after SIGINT or SIGTERM.

EXAMPLES
  qins diff Phi-3.5-mini-instruct Phi-3.5-mini-instruct.qins --min-snr-db 30
  qins diff model.safetensors model.qins.safetensors --json
  qins diff model.safetensors model.qins.safetensors --top -1 --plot snr.png`

const evalHelp = `Eval runs both checkpoints as causal language models (Llama, Mistral,
Phi-3 with longrope, Qwen2, Qwen3, Gemma 2, Gemma 3's text model, and the
mixtures of experts Mixtral and Qwen3-MoE, which read only the experts
their router picks; in float32, as transformers computes them)
over the same token stream and compares, at every position, CAND's
next-token distribution with REF's:
  - top-1 agreement: how often the most likely next token is the same;
  - the KL divergence KL(P_REF || P_CAND) in nats: mean, median, 99th
    percentile and max;
  - each model's perplexity on the stream, and their ratio.
Then both generate greedily from one prompt, and eval reports the first
generated token where CAND differs, and both texts. This is the
measurement of llama.cpp's llama-perplexity --kl-divergence. Compare the
KLD and the top-1 agreement: perplexity on a model's own text is near its
floor and hides most changes.

INPUTS
  REF and CAND: anything qins diff reads; a QINS file or folder is decoded
  as qins restore writes F32. CAND must have REF's tensor names and
  shapes, unless CAND's own folder holds a config.json for another
  architecture (the same weights in another layout, such as Phi-3's fused
  qkv_proj): CAND then runs with that config, and the two need only the
  same vocabulary and depth. config.json, tokenizer.json or
  tokenizer.model, and tokenizer_config.json are read beside REF (its
  folder, or the folder of the file or index).
  Limits: config files, --tokens and --text of at most 16 MiB each,
  tokenizer files of at most 64 MiB. The tokenizer is read only to
  tokenise --text, to find BOS for the default stream and to decode the
  generations; when it cannot be read, --tokens runs still work and the
  generations are shown as ids, with the reason (text_error in --json).
  The config's sizes are checked (with overflow-checked arithmetic) before
  they size anything, and rope_theta, rms_norm_eps and the rope scaling
  factors must be positive numbers float32 holds. A checkpoint holding
  tensors the config does not read is refused, naming them (but
  lm_head.weight beside tied embeddings, and rotary_emb.inv_freq, which
  transformers ignores too). Text is tokenised as transformers'
  tokenizer(text) does, SentencePiece-style (Llama 2, Mistral, Phi-3,
  Gemma) or byte-level BPE (GPT-2, Llama 3, Qwen 2 and 3, Phi-4,
  DeepSeek-V3): special and added tokens written in the text (<s>,
  <|im_start|>) become their ids, lstrip, rstrip and single_word
  honoured; qins tokenize prints the ids.

THE STREAM
  --text FILE      UTF-8 text, tokenised (BOS and EOS added as
                   tokenizer_config.json and the post-processor say).
  --tokens FILE    a JSON array of token ids.
  (neither)        REF's own greedy generation of --generate N tokens
                   from BOS (default 128).
  The greedy comparison starts from BOS for the default stream and from
  the stream's first 16 tokens otherwise; --generate 0 (with --text or
  --tokens) skips it. Each generated token reads every weight once. When
  a model's weights fit --memory in their stored form (BF16, F16 or F32
  values; QINS codes with one sign bit per weight and a 1 KiB table per
  range), its generation loads them once and multiplies by them in place,
  decoding inside the product: about one pass over the stored bytes per
  token. Otherwise it reads the checkpoint again for every token (slow on
  billions of weights: give a small --generate there).

  The teacher-forced pass runs layer by layer and holds at most about one
  layer of each model, the activations and the two tokens x vocabulary
  logits; the two models generate one after the other, so their weights
  are never held together.

REF ONCE, MANY CANDIDATES
  --save-ref FILE  also write REF's side to FILE (atomically; --force
                   replaces an existing one, never a file eval reads;
                   a missing folder is refused before any work): the
                   stream, REF's log-probabilities at every compared
                   position, its most likely tokens and greedy ids,
                   its config.json and tensor list. Then qins eval
                   FILE CAND compares CAND without reading REF, as
                   llama.cpp's --kl-divergence-base does. FILE is
                   recognised by its content, and refused if any of
                   its bytes changed (a checksum). With REF alone (qins
                   eval REF --save-ref FILE) only REF runs, and the
                   file is the same.
                   Top-1, REF's perplexity and the greedy
                   comparison are exactly those of running REF; of the
                   log-probabilities, REF's 32 most likely tokens and
                   the stream's next token are kept exactly, the others
                   rounded to 16 bits over their row's range (2.3e-4
                   nats at most over a range of 30), so the KLD moves in the last
                   digits (under 1e-4 relative on stories260K). FILE is
                   about 2 bytes x vocabulary per token (8 MB for 128
                   tokens of a 32k vocabulary). --text, --tokens and
                   --generate may be given again only as saved; CAND
                   must have REF's tensors (or, with its own config.json
                   of another architecture, REF's vocabulary and depth);
                   the tokenizer beside CAND decodes the generations,
                   and must be REF's, else they are shown as ids.

OPTIONS
  --max-kld X      fail when the mean KLD is above X.
  --min-top1 P     fail when the top-1 agreement (a fraction) is below P.
  --memory SIZE    the weights each generation may keep in memory, such
                   as 2GiB or 500MB (default: half the available memory,
                   MemAvailable in /proc/meminfo; 2 GiB where it cannot
                   be read). The report gives the budget and, per model,
                   the bytes and whether they were resident or streamed.
  --config FILE    read the model's config from FILE instead of REF's
                   config.json (a tokenizer is then also looked for
                   beside it).
  --json           print one object: ref, cand, architecture, source,
                   ids, tokens, positions (tokens - 1), top1, top1_agree,
                   kld {mean, median, p99, max}, ppl {ref, cand, ratio},
                   saved_ref (with a saved REF), seconds, greedy {prompt, first_divergence (1-based
                   among the generated tokens, null when none), ref_ids,
                   cand_ids, ref_text, cand_text, seconds}, memory
                   {budget, ref and cand: {bytes, resident} or null} and
                   fails.
                   Figures that are not finite (a perplexity past
                   float64) are null and listed in nonfinite.

EXIT STATUS
  0 within the thresholds; 1 a threshold failed (the report is printed);
  2 an input cannot be used, with one line naming the file: names or
  shapes that differ, no config.json, an architecture or tokenizer it
  does not know, FP8, FP6 or FP4 weights, an id outside the vocabulary, a
  stream longer than max_position_embeddings, logits that are not finite
  (in the teacher-forced pass or either generation: the error names the
  model, the position and the likely cause, a config value outside the
  range of released models, else the weights); --max-kld must be a finite
  number >= 0 and --min-top1 a number from 0 to 1 (else exit 2); a
  --save-ref FILE that cannot be written is exit 2 too;
  130 or 143 after SIGINT or SIGTERM.

EXAMPLES
  qins eval Phi-3.5-mini-instruct Phi-3.5-mini-instruct.qins
  qins eval testdata/stories260K s.qins.safetensors --generate 200 --json
  qins eval ref/ cand.qins --tokens ids.json --generate 0 --max-kld 0.01
  qins eval ref/ cand.qins --min-top1 0.95
  qins eval ref/ --save-ref ref.qinsref; qins eval ref.qinsref a.qins`

const versionHelp = `Version prints what the Go toolchain recorded in the binary: the module
version (a tag, a pseudo-version for a go build in a git clone, or
(devel)), the Go version and platform, and, when the build recorded it,
the commit, with +dirty when the tree had uncommitted changes, and its
time. qins --version prints the same. For example:

  qins v0.0.0-20261202023430-f7cf2e298fcc+dirty
  go1.26.8 linux/amd64
  commit f7cf2e298fcc5f9d6d6d2a4d28b4107a6d88e06f+dirty (2026-12-02T02:34:30Z)

With -buildvcs=false, or outside a git clone, there is no commit line and
the version is (devel).`
