//! Exact scoring of job titles: `log P(continuation | prompt)` by the chain rule over the
//! continuation's tokens.
//!
//! - [`Scorer::score_documents`] scores every target of a batch of rendered documents: one
//!   forward pass per document (documents of similar length are batched with right padding,
//!   which causal attention makes exact), and the output head (the vocabulary projection, a
//!   fifth of SmolLM2's weights) only at the positions that are scored.
//! - [`Scorer::distribution`] gives the model's whole distribution over a list of
//!   continuations (every title of the taxonomy): the prompt runs once, then all continuations
//!   run together as a token *trie* in one pass, each trie node attending to the prompt's cached
//!   keys and values and to its own ancestors only ("tree attention"), at the position it would
//!   have in its own sequence. The cost is one pass over the trie's nodes instead of one
//!   forward pass per title.

use std::collections::HashMap;

pub(crate) mod predict;
pub(crate) mod speed;
pub(crate) mod texts;

use burn::tensor::{Device, Int, Tensor};
use labor_kernels::ops;
use labor_template::Document;

use crate::error::{Error, Result};
use crate::llm::model::{KvCache, Llama};
use crate::tokenize::tokenizer::{Encoded, TextTokenizer};

/// Scores rendered documents with a model and its tokenizer.
#[derive(Debug)]
pub struct Scorer<'a> {
    model: &'a Llama,
    tokenizer: &'a TextTokenizer,
    device: Device,
    batch_tokens: usize,
    /// The titles of constrained decoding, as a token trie (`None`: free decoding).
    titles: Option<Trie>,
}

/// A model's distribution over a set of continuations (e.g. every job title) after a prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Distribution {
    /// `log P(continuation | prompt)` of each continuation, in the order given.
    pub log_probs: Vec<f64>,
}

impl Distribution {
    /// Probability mass the model puts on the continuations together (at most 1: the rest goes
    /// to text that is not one of them).
    pub fn valid_mass(&self) -> f64 {
        self.log_probs.iter().map(|l| l.exp()).sum()
    }

    /// The distribution renormalised over the continuations (sums to 1).
    pub fn renormalized(&self) -> Vec<f64> {
        let max = self
            .log_probs
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = self.log_probs.iter().map(|l| (l - max).exp()).collect();
        let z: f64 = w.iter().sum();
        w.into_iter().map(|x| x / z).collect()
    }

    /// The `k` most likely continuations as `(index, renormalised probability)`, most likely
    /// first (ties by index).
    pub fn top_k(&self, k: usize) -> Vec<(usize, f64)> {
        let p = self.renormalized();
        let mut idx: Vec<usize> = (0..p.len()).collect();
        idx.sort_by(|a, b| p[*b].total_cmp(&p[*a]).then(a.cmp(b)));
        idx.into_iter().take(k).map(|i| (i, p[i])).collect()
    }

    /// Entropy of the renormalised distribution, in nats.
    pub fn entropy(&self) -> f64 {
        self.renormalized()
            .into_iter()
            .filter(|p| *p > 0.0)
            .map(|p| -p * p.ln())
            .sum()
    }
}

/// One target's score ([`Scorer::score_titles`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TitleScore {
    /// `log P(continuation | prompt)`: under constrained decoding for a constrained scorer.
    pub log_prob: f64,
    /// For a constrained scorer, at each token of the continuation: the log of the free
    /// model's probability of the tokens that continue some title there (at most 0). Their
    /// sum is what constraining added: the free log-probability is
    /// `log_prob + step_log_mass.iter().sum()`. Empty for a free scorer.
    pub step_log_mass: Vec<f64>,
}

/// The token trie of a set of continuations.
#[derive(Debug)]
struct Trie {
    /// Token of each node.
    tokens: Vec<u32>,
    /// Parent node (`None` for a first token, whose parent is the prompt's last position).
    parent: Vec<Option<usize>>,
    /// Depth (0 for first tokens).
    depth: Vec<usize>,
    /// Node path of each continuation (empty for an empty continuation).
    paths: Vec<Vec<usize>>,
    /// Child of a node (`None`: the root) by token.
    edges: HashMap<(Option<usize>, u32), usize>,
    /// Tokens of the children of the root (index 0) and of node `i` (index `i + 1`), in trie
    /// order.
    kids: Vec<Vec<u32>>,
}

impl Trie {
    fn new(continuations: &[Vec<u32>]) -> Self {
        let mut t = Trie {
            tokens: vec![],
            parent: vec![],
            depth: vec![],
            paths: vec![],
            edges: HashMap::new(),
            kids: vec![vec![]],
        };
        for toks in continuations {
            let mut at: Option<usize> = None;
            let mut path = Vec::with_capacity(toks.len());
            for (d, tok) in toks.iter().enumerate() {
                let node = *t.edges.entry((at, *tok)).or_insert_with(|| {
                    t.tokens.push(*tok);
                    t.parent.push(at);
                    t.depth.push(d);
                    t.kids[at.map_or(0, |p| p + 1)].push(*tok);
                    t.kids.push(vec![]);
                    t.tokens.len() - 1
                });
                path.push(node);
                at = Some(node);
            }
            t.paths.push(path);
        }
        t
    }

    /// Tokens that continue some continuation after node `at` (`None`: the root).
    fn kids_of(&self, at: Option<usize>) -> &[u32] {
        &self.kids[at.map_or(0, |p| p + 1)]
    }

    /// `None` when every continuation is non-empty and none is a prefix of another, else the
    /// index of an offending continuation: constrained decoding then has no "stop here" event.
    fn not_prefix_free(&self) -> Option<usize> {
        self.paths
            .iter()
            .position(|p| p.last().is_none_or(|end| !self.kids[end + 1].is_empty()))
    }

    /// `true` for every node with at least one child.
    fn inner(&self) -> Vec<bool> {
        self.kids[1..].iter().map(|k| !k.is_empty()).collect()
    }

    /// Groups of the inner nodes (those with children) of whole subtrees, each rooted at a
    /// first token, of at most `size` nodes (a larger subtree forms a group of its own), as node
    /// lists in trie order. Leaves need no forward pass: their token's probability is read at
    /// their parent.
    fn groups(&self, size: usize) -> Vec<Vec<usize>> {
        let n = self.tokens.len();
        let inner = self.inner();
        let mut root = vec![0; n];
        let mut subtrees: Vec<Vec<usize>> = vec![];
        let mut subtree_of_root: HashMap<usize, usize> = HashMap::new();
        for i in 0..n {
            root[i] = match self.parent[i] {
                Some(p) => root[p],
                None => i,
            };
            if !inner[i] {
                continue;
            }
            let k = *subtree_of_root.entry(root[i]).or_insert_with(|| {
                subtrees.push(vec![]);
                subtrees.len() - 1
            });
            subtrees[k].push(i);
        }
        let mut groups: Vec<Vec<usize>> = vec![];
        let mut current: Vec<usize> = vec![];
        for t in subtrees {
            if !current.is_empty() && current.len() + t.len() > size {
                groups.push(std::mem::take(&mut current));
            }
            current.extend(t);
        }
        if !current.is_empty() {
            groups.push(current);
        }
        groups
    }
}

/// Nodes of the trie per forward-pass row: subtrees packed into rows of at most this many
/// tokens, so tree attention costs `nodes × 256` instead of `nodes²`.
const TRIE_ROW: usize = 256;

impl<'a> Scorer<'a> {
    /// A scorer running `model` on `device`, batching documents up to 4,096 (padded) tokens.
    pub fn new(model: &'a Llama, tokenizer: &'a TextTokenizer, device: Device) -> Self {
        Self {
            model,
            tokenizer,
            device,
            batch_tokens: 4096,
            titles: None,
        }
    }

    /// Scores as *constrained decoding* over `continuations` (e.g. `" Cooks\n"` for every
    /// title of the taxonomy): at every token of a target, the model's next-token distribution
    /// is renormalised over the tokens that continue at least one of them.
    ///
    /// A free scorer gives `log P(title | prompt)` under the model's distribution over all
    /// text, so whatever mass the model puts on strings that are not titles (misspellings,
    /// other wordings, the end of the text) is lost to every title. Decoding constrained to the
    /// titles (what a generator with a title grammar samples from) gives a distribution over
    /// the titles alone that sums to one, as a classifier over the same outcomes does: the
    /// probability of a title is the product, over its tokens, of the token's probability
    /// divided by the summed probability of its siblings in the trie. It costs the free
    /// scorer's single forward pass; only the log-sum-exp over each step's siblings is added.
    ///
    /// Every target scored must be one of `continuations` (tokenized on its own, as the
    /// templates guarantee), and distributions ([`Scorer::distribution`]) are renormalised the
    /// same way over the continuations they are asked for.
    ///
    /// # Errors
    /// [`Error::Tokenizer`]; [`Error::InvalidOption`] when `continuations` is empty, or one is
    /// empty or a prefix of another (as tokens), so that decoding could not tell where a title
    /// ends.
    pub fn with_constrained_titles(mut self, continuations: &[String]) -> Result<Self> {
        if continuations.is_empty() {
            return Err(Error::InvalidOption {
                name: "constrained titles",
                detail: "no titles to constrain decoding to".into(),
            });
        }
        let toks = continuations
            .iter()
            .map(|c| self.tokenizer.encode_continuation(c))
            .collect::<Result<Vec<_>>>()?;
        let trie = Trie::new(&toks);
        if let Some(i) = trie.not_prefix_free() {
            return Err(Error::InvalidOption {
                name: "constrained titles",
                detail: format!(
                    "{:?} is empty or a prefix of another title as tokens: end every title with \
                     a terminator",
                    continuations[i]
                ),
            });
        }
        self.titles = Some(trie);
        Ok(self)
    }

    /// `true` when the scorer decodes constrained to a set of titles
    /// ([`Scorer::with_constrained_titles`]).
    pub fn is_constrained(&self) -> bool {
        self.titles.is_some()
    }

    /// Batches documents up to `tokens` padded tokens per forward pass (at least one document
    /// per pass). Larger batches use the matrix units better and memory linearly more.
    #[must_use]
    pub fn with_batch_tokens(mut self, tokens: usize) -> Self {
        self.batch_tokens = tokens.max(1);
        self
    }

    /// The model.
    pub fn model(&self) -> &Llama {
        self.model
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &TextTokenizer {
        self.tokenizer
    }

    fn ints(&self, ids: &[u32], shape: [usize; 2]) -> Tensor<2, Int> {
        let v: Vec<i32> = ids.iter().map(|i| *i as i32).collect();
        Tensor::<1, Int>::from_ints(v.as_slice(), &self.device).reshape(shape)
    }

    fn read(t: Tensor<1>) -> Result<Vec<f32>> {
        t.into_data()
            .try_to_vec::<f32>()
            .map_err(|source| Error::TensorData {
                what: "log-probabilities",
                source,
            })
    }

    fn check_len(&self, worker_id: &str, tokens: usize) -> Result<()> {
        if tokens > self.model.max_seq_len() {
            return Err(Error::TooLong {
                worker_id: worker_id.to_string(),
                tokens,
                max: self.model.max_seq_len(),
            });
        }
        Ok(())
    }

    /// `log P(token[i] | tokens before it)` at the requested `(sequence, position)` pairs of a
    /// batch of token sequences, computing the output head at those positions only.
    ///
    /// Position `i >= 1` of sequence `s` asks for the log-probability of `seqs[s][i]`.
    fn log_probs_at(&self, seqs: &[&[u32]], wanted: &[(usize, usize)]) -> Result<Vec<f32>> {
        if wanted.is_empty() {
            return Ok(vec![]);
        }
        let picks: Vec<(usize, u32)> = wanted
            .iter()
            .enumerate()
            .map(|(r, (s, i))| (r, seqs[*s][*i]))
            .collect();
        self.picked_log_probs(self.head_at(seqs, wanted), &picks)
    }

    /// The output head's logits before each requested `(sequence, position)` of a batch of
    /// token sequences (row `r` predicts `seqs[s][i]` of `wanted[r]`).
    ///
    /// # Shapes
    /// - output: `[1, wanted.len(), vocab]`
    fn head_at(&self, seqs: &[&[u32]], wanted: &[(usize, usize)]) -> Tensor<3> {
        let b = seqs.len();
        let t = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(b * t);
        for s in seqs {
            ids.extend_from_slice(s);
            ids.extend(std::iter::repeat_n(0, t - s.len()));
        }
        let h = self
            .model
            .hidden(self.ints(&ids, [b, t]), &mut KvCache::new());
        let d = h.dims()[2];
        // The hidden state *before* each scored token predicts it.
        let rows: Vec<u32> = wanted.iter().map(|(s, i)| (s * t + i - 1) as u32).collect();
        let m = rows.len();
        let picked = h
            .reshape([b * t, d])
            .select(0, self.ints(&rows, [1, m]).reshape([m]))
            .reshape([1, m, d]);
        self.model.head(picked)
    }

    /// Constrained log-probabilities at `wanted` (see [`Scorer::with_constrained_titles`]):
    /// each token's log-probability minus the log-sum-exp of its siblings' in the title trie,
    /// the sibling sets given per row by `kids`; and that log-sum-exp, the log of the free
    /// model's mass on the siblings, per row.
    fn constrained_log_probs_at(
        &self,
        seqs: &[&[u32]],
        wanted: &[(usize, usize)],
        kids: &[&[u32]],
    ) -> Result<(Vec<f32>, Vec<f64>)> {
        if wanted.is_empty() {
            return Ok((vec![], vec![]));
        }
        // Per row: the token itself, then every sibling (the token among them).
        let mut picks: Vec<(usize, u32)> = vec![];
        for (r, ((s, i), k)) in wanted.iter().zip(kids).enumerate() {
            picks.push((r, seqs[*s][*i]));
            picks.extend(k.iter().map(|t| (r, *t)));
        }
        let lp = self.picked_log_probs(self.head_at(seqs, wanted), &picks)?;
        let mut out = Vec::with_capacity(wanted.len());
        let mut mass = Vec::with_capacity(wanted.len());
        let mut at = 0;
        for k in kids {
            let own = lp[at];
            let z = log_sum_exp(&lp[at + 1..at + 1 + k.len()]);
            out.push((f64::from(own) - z) as f32);
            mass.push(z);
            at += 1 + k.len();
        }
        Ok((out, mass))
    }

    /// `log softmax(logits[0, row])[token]` for every `(row, token)` of `picks`: on the CPU
    /// kernels from each row's log-sum-exp, elsewhere from burn's log-softmax.
    ///
    /// # Shapes
    /// - logits: `[1, rows, vocab]`
    fn picked_log_probs(&self, logits: Tensor<3>, picks: &[(usize, u32)]) -> Result<Vec<f32>> {
        let [_, r, v] = logits.dims();
        Self::read(ops::log_softmax_pick(logits.reshape([r, v]), picks))
    }

    /// `log P(continuation | prompt)` of every target of `doc`, in target order.
    ///
    /// # Errors
    /// As [`Scorer::score_documents`].
    pub fn score_document(&self, doc: &Document) -> Result<Vec<f64>> {
        Ok(self
            .score_documents(std::slice::from_ref(doc))?
            .pop()
            .unwrap_or_default())
    }

    /// `log P(continuation | prompt)` of every target of every document, in order.
    ///
    /// Each text is tokenized once; each continuation must start and end on token boundaries
    /// (the templates put the space before the title into the continuation and end it with the
    /// terminator, so byte-level BPE tokenizers never merge across them). Documents are sorted
    /// by length and batched up to the scorer's token budget.
    ///
    /// # Errors
    /// [`Error::Tokenizer`], [`Error::TokenBoundary`] naming the worker and byte offset, or
    /// [`Error::TooLong`] when a text exceeds the model's context; [`Error::NonFiniteLogProb`]
    /// naming the worker when the model computes a NaN or infinite log-probability.
    pub fn score_documents(&self, docs: &[Document]) -> Result<Vec<Vec<f64>>> {
        Ok(self
            .score_titles(docs)?
            .into_iter()
            .map(|d| d.into_iter().map(|t| t.log_prob).collect())
            .collect())
    }

    /// As [`Scorer::score_documents`], with each target's score as a [`TitleScore`]: for a
    /// constrained scorer, also the mass the free model kept on titles at each token.
    ///
    /// # Errors
    /// As [`Scorer::score_documents`].
    pub fn score_titles(&self, docs: &[Document]) -> Result<Vec<Vec<TitleScore>>> {
        let mut encs = Vec::with_capacity(docs.len());
        let mut spans = Vec::with_capacity(docs.len());
        // Constrained: the sibling tokens of every scored token, per document in target order.
        let mut steps: Vec<Vec<&[u32]>> = Vec::with_capacity(docs.len());
        for doc in docs {
            let enc = self.tokenizer.encode(&doc.text)?;
            self.check_len(&doc.worker_id, enc.ids.len())?;
            let sp = target_spans(doc, &enc)?;
            if let Some(trie) = &self.titles {
                steps.push(title_steps(trie, doc, &enc.ids, &sp)?);
            }
            spans.push(sp);
            encs.push(enc);
        }
        let mut order: Vec<usize> = (0..docs.len()).collect();
        order.sort_by_key(|i| encs[*i].ids.len());
        let mut out: Vec<Vec<TitleScore>> = spans
            .iter()
            .map(|s| vec![TitleScore::default(); s.len()])
            .collect();
        let mut start = 0;
        while start < order.len() {
            // Grow the batch while the padded size stays within budget (sorted by length, so
            // the last document is the longest).
            let mut end = start + 1;
            while end < order.len()
                && encs[order[end]].ids.len() * (end + 1 - start) <= self.batch_tokens
            {
                end += 1;
            }
            let batch = &order[start..end];
            let seqs: Vec<&[u32]> = batch.iter().map(|i| encs[*i].ids.as_slice()).collect();
            let mut wanted = vec![];
            for (s, i) in batch.iter().enumerate() {
                for (a, b) in &spans[*i] {
                    wanted.extend((*a..*b).map(|j| (s, j)));
                }
            }
            let (lp, mass) = if self.titles.is_some() {
                let kids: Vec<&[u32]> = batch
                    .iter()
                    .flat_map(|i| steps[*i].iter().copied())
                    .collect();
                self.constrained_log_probs_at(&seqs, &wanted, &kids)?
            } else {
                (self.log_probs_at(&seqs, &wanted)?, vec![])
            };
            check_finite(&lp, &wanted, |s| {
                format!("worker `{}`", docs[batch[s]].worker_id)
            })?;
            let mut k = 0;
            for i in batch {
                for (t, (a, b)) in spans[*i].iter().enumerate() {
                    let n = b - a;
                    out[*i][t] = TitleScore {
                        log_prob: lp[k..k + n].iter().map(|x| f64::from(*x)).sum(),
                        step_log_mass: mass.get(k..k + n).map(<[f64]>::to_vec).unwrap_or_default(),
                    };
                    k += n;
                }
            }
            start = end;
        }
        Ok(out)
    }

    /// The token ids of `text` and the log-probability of each token given those before it
    /// (`None` for the first, which has no context).
    ///
    /// # Errors
    /// [`Error::Tokenizer`], [`Error::TooLong`] or [`Error::NonFiniteLogProb`].
    pub fn token_log_probs(&self, text: &str) -> Result<(Vec<u32>, Vec<Option<f64>>)> {
        let ids = self.tokenizer.encode(text)?.ids;
        self.check_len("", ids.len())?;
        let wanted: Vec<(usize, usize)> = (1..ids.len()).map(|i| (0, i)).collect();
        let lp = self.log_probs_at(&[&ids], &wanted)?;
        check_finite(&lp, &wanted, |_| "the text".to_string())?;
        let mut out = Vec::with_capacity(ids.len());
        if !ids.is_empty() {
            out.push(None);
        }
        out.extend(lp.into_iter().map(|x| Some(f64::from(x))));
        Ok((ids, out))
    }

    /// `log P(c | prompt)` for every continuation `c` (e.g. `" Cooks\n"` for every title of the
    /// taxonomy), by the chain rule; see [`Scorer::distribution`].
    ///
    /// # Errors
    /// As [`Scorer::distribution`].
    pub fn continuation_log_probs(
        &self,
        prompt: &str,
        continuations: &[String],
    ) -> Result<Vec<f64>> {
        Ok(self.distribution(prompt, continuations)?.log_probs)
    }

    /// The model's distribution over `continuations` after `prompt`: the prompt runs once,
    /// and all continuations run together as one token trie with tree attention.
    ///
    /// Each continuation is tokenized on its own, which equals its tokenization after the
    /// prompt when the prompt ends on a pre-token boundary (the templates end prompts with `:`
    /// and start continuations with a space). A constrained scorer
    /// ([`Scorer::with_constrained_titles`]) renormalises every step over `continuations`, so
    /// the distribution sums to one.
    ///
    /// # Errors
    /// [`Error::Tokenizer`], or [`Error::TooLong`] when the prompt and a continuation exceed the
    /// model's context.
    pub fn distribution(&self, prompt: &str, continuations: &[String]) -> Result<Distribution> {
        let ids = self.tokenizer.encode(prompt)?.ids;
        if ids.is_empty() {
            return Err(Error::Tokenizer {
                detail: "the prompt is empty: nothing to condition on".into(),
            });
        }
        let mut cache = KvCache::new();
        self.check_len("", ids.len())?;
        let h = self
            .model
            .hidden(self.ints(&ids, [1, ids.len()]), &mut cache);
        let last = h.narrow(1, ids.len() - 1, 1);
        self.distribution_after(last, &cache, continuations)
    }

    /// The distribution over `continuations` given the prompt whose keys and values are in
    /// `cache` and whose last hidden state is `last` (`[1, 1, d_model]`).
    fn distribution_after(
        &self,
        last: Tensor<3>,
        cache: &KvCache,
        continuations: &[String],
    ) -> Result<Distribution> {
        let toks = continuations
            .iter()
            .map(|c| self.tokenizer.encode_continuation(c))
            .collect::<Result<Vec<_>>>()?;
        let longest = toks.iter().map(Vec::len).max().unwrap_or(0);
        self.check_len("", cache.len() + longest)?;
        let trie = Trie::new(&toks);
        let n = trie.tokens.len();
        if n == 0 {
            return Ok(Distribution {
                log_probs: vec![0.0; continuations.len()],
            });
        }
        let groups = trie.groups(TRIE_ROW);
        let rows = groups.len();
        let m = groups.iter().map(Vec::len).max().unwrap_or(0);
        // Rows of the head: the prompt's end (row 0), then every inner node in group order.
        let mut row_of: Vec<Option<usize>> = vec![None; n];
        let mut heads = vec![last];
        if rows > 0 {
            // Where each inner node sits in the padded [rows, m] batch.
            let mut slot = vec![];
            let mut ids = Vec::with_capacity(rows * m);
            let mut positions = Vec::with_capacity(rows);
            let mut visible = Vec::with_capacity(rows);
            let mut local = vec![0usize; n];
            for (g, nodes) in groups.iter().enumerate() {
                for (j, node) in nodes.iter().enumerate() {
                    local[*node] = j;
                    row_of[*node] = Some(slot.len() + 1);
                    slot.push((g * m + j) as u32);
                }
                let mut pos = vec![cache.len(); m];
                let mut vis = vec![vec![false; m]; m];
                for (j, node) in nodes.iter().enumerate() {
                    pos[j] = cache.len() + trie.depth[*node];
                    let mut at = Some(*node);
                    while let Some(a) = at {
                        vis[j][local[a]] = true;
                        at = trie.parent[a];
                    }
                }
                // Padding sees only itself (and the prompt); nothing reads it.
                for (j, row) in vis.iter_mut().enumerate().skip(nodes.len()) {
                    row[j] = true;
                }
                ids.extend(nodes.iter().map(|i| trie.tokens[*i]));
                ids.extend(std::iter::repeat_n(0, m - nodes.len()));
                positions.push(pos);
                visible.push(vis);
            }
            let h = self
                .model
                .hidden_tree(self.ints(&ids, [rows, m]), &positions, &visible, cache);
            let d = h.dims()[2];
            let k = slot.len();
            heads.push(
                h.reshape([rows * m, d])
                    .select(0, self.ints(&slot, [1, k]).reshape([k]))
                    .reshape([1, k, d]),
            );
        }
        let logits = self.model.head(Tensor::cat(heads, 1));
        // One edge per node: log P(node's token | its parent's row).
        let picks: Vec<(usize, u32)> = (0..n)
            .map(|i| {
                (
                    trie.parent[i].and_then(|p| row_of[p]).unwrap_or(0),
                    trie.tokens[i],
                )
            })
            .collect();
        let mut edge: Vec<f64> = self
            .picked_log_probs(logits, &picks)?
            .into_iter()
            .map(f64::from)
            .collect();
        if self.is_constrained() {
            // Each edge renormalised over its siblings: the same parent's children (the root's
            // at index 0, node p's at p + 1).
            let slot = |i: usize| trie.parent[i].map_or(0, |p| p + 1);
            let mut siblings: Vec<Vec<f32>> = vec![vec![]; n + 1];
            for (i, e) in edge.iter().enumerate() {
                siblings[slot(i)].push(*e as f32);
            }
            let lse: Vec<f64> = siblings.iter().map(|s| log_sum_exp(s)).collect();
            for (i, e) in edge.iter_mut().enumerate() {
                *e -= lse[slot(i)];
            }
        }
        Ok(Distribution {
            log_probs: trie
                .paths
                .iter()
                .map(|p| p.iter().map(|i| edge[*i]).sum())
                .collect(),
        })
    }

    /// For every target of `doc`, the distribution over `continuations` after the target's
    /// prompt. The document runs once; each target reuses the keys and values of its prompt.
    ///
    /// # Errors
    /// As [`Scorer::score_documents`] and [`Scorer::distribution`].
    pub fn document_distributions(
        &self,
        doc: &Document,
        continuations: &[String],
    ) -> Result<Vec<Distribution>> {
        let enc = self.tokenizer.encode(&doc.text)?;
        self.check_len(&doc.worker_id, enc.ids.len())?;
        let spans = target_spans(doc, &enc)?;
        let n = enc.ids.len();
        let mut cache = KvCache::new();
        let h = self.model.hidden(self.ints(&enc.ids, [1, n]), &mut cache);
        spans
            .iter()
            .map(|(a, _)| {
                let prompt_cache = cache.truncated(*a);
                let last = h.clone().narrow(1, a - 1, 1);
                self.distribution_after(last, &prompt_cache, continuations)
            })
            .collect()
    }
}

/// [`Error::NonFiniteLogProb`] for the first NaN or infinite entry of `lp` (computed at
/// `wanted`'s `(sequence, token)` places), the sequence named by `text`.
fn check_finite(
    lp: &[f32],
    wanted: &[(usize, usize)],
    text: impl Fn(usize) -> String,
) -> Result<()> {
    match lp.iter().position(|x| !x.is_finite()) {
        Some(k) => Err(Error::NonFiniteLogProb {
            text: text(wanted[k].0),
            token: wanted[k].1,
            value: lp[k],
        }),
        None => Ok(()),
    }
}

/// `log Σ exp(x)` in f64 (`-∞` for no terms).
fn log_sum_exp(x: &[f32]) -> f64 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if !max.is_finite() {
        return f64::from(max);
    }
    let max = f64::from(max);
    max + x
        .iter()
        .map(|v| (f64::from(*v) - max).exp())
        .sum::<f64>()
        .ln()
}

/// The sibling tokens (the children of the trie node before it) of every token of every
/// target's continuation `spans` of `ids`, in order: the sets constrained decoding
/// renormalises over.
///
/// # Errors
/// [`Error::NotATitle`] for a continuation whose tokens are not a whole title of `trie`.
fn title_steps<'t>(
    trie: &'t Trie,
    doc: &Document,
    ids: &[u32],
    spans: &[(usize, usize)],
) -> Result<Vec<&'t [u32]>> {
    let mut out = vec![];
    for (t, (a, b)) in doc.targets.iter().zip(spans) {
        let not_a_title = || Error::NotATitle {
            worker_id: doc.worker_id.clone(),
            offset: t.continuation_start,
            titles: trie.paths.len(),
        };
        let mut at = None;
        for tok in &ids[*a..*b] {
            out.push(trie.kids_of(at));
            at = Some(*trie.edges.get(&(at, *tok)).ok_or_else(not_a_title)?);
        }
        // A whole title ends at a leaf (the titles are prefix-free).
        if at.is_none_or(|n| !trie.kids_of(Some(n)).is_empty()) {
            return Err(not_a_title());
        }
    }
    Ok(out)
}

/// Token ranges `[a, b)` of every target's continuation in `enc`.
fn target_spans(doc: &Document, enc: &Encoded) -> Result<Vec<(usize, usize)>> {
    let n = enc.ids.len();
    let boundary = |offset: usize| -> Result<usize> {
        // The first token starting at `offset`, with every earlier token ending at or before it.
        match enc.offsets.iter().position(|(s, e)| *s >= offset && e > s) {
            Some(j)
                if enc.offsets[j].0 == offset
                    && enc.offsets[..j].iter().all(|(_, e)| *e <= offset) =>
            {
                Ok(j)
            }
            None if offset == doc.text.len() => Ok(n),
            _ => Err(Error::TokenBoundary {
                worker_id: doc.worker_id.clone(),
                offset,
            }),
        }
    };
    doc.targets
        .iter()
        .map(|t| {
            let (a, b) = (
                boundary(t.continuation_start)?,
                boundary(t.continuation_end)?,
            );
            if a == 0 {
                return Err(Error::TokenBoundary {
                    worker_id: doc.worker_id.clone(),
                    offset: t.continuation_start,
                });
            }
            Ok((a, b))
        })
        .collect()
}
