//! The template variants and their builder.

use std::borrow::Cow;
use std::sync::Arc;

use labor_data::{
    Ethnicity, Gender, NumberedTitles, Panel, Region, SeededRng, StateId, Taxonomy, Worker,
    YearRecord,
};

use crate::document::{Document, Layout, Rendered, Target};
use crate::error::{Error, Result};
use crate::wording::Wording;
use labor_data::TargetRule;
use labor_rand::id_stream;

/// Renders workers as text (see the crate docs for the variants).
pub trait Template: Send + Sync {
    /// Short name (`resume`, `prompt`, `prompt-titles`, `icl`).
    fn name(&self) -> &'static str;

    /// Whether targets share one text or each has its own.
    fn layout(&self) -> Layout;

    /// Renders `worker` with the spans of its targets.
    ///
    /// # Errors
    /// [`Error::EmptyWorker`] for a worker without records, [`Error::UnknownState`] for a state
    /// outside the taxonomy.
    fn render(&self, worker: &Worker) -> Result<Rendered>;

    /// The prompt of record `k` alone, built without rendering the rest of the career: for a
    /// [`Layout::Shared`] template it equals the prefix of the full text up to that target.
    ///
    /// # Errors
    /// As [`Template::render`], and [`Error::RecordOutOfRange`].
    fn prompt(&self, worker: &Worker, k: usize) -> Result<String>;

    /// The continuation this template writes after a prompt when the outcome is `state`:
    /// `" {title}{terminator}"` (with numbered titles, `" job_032{terminator}"`). Scoring every
    /// state's continuation gives a model's full distribution over the outcomes.
    ///
    /// # Errors
    /// [`Error::UnknownState`] for a state outside the taxonomy.
    fn continuation(&self, state: StateId) -> Result<String>;

    /// The continuation of every outcome of `taxonomy`, indexed by state id: what a model scores
    /// for the full distribution, or constrains its decoding to.
    ///
    /// # Errors
    /// As [`Template::continuation`].
    fn continuations(&self, taxonomy: &Taxonomy) -> Result<Vec<String>> {
        taxonomy
            .outcomes()
            .map(|(id, _)| self.continuation(id))
            .collect()
    }

    /// Every document of every worker of `panel`, in the panel's order (one per worker for a
    /// [`Layout::Shared`] template, one per target otherwise): a training or scoring corpus.
    ///
    /// # Errors
    /// As [`Template::render`].
    fn render_panel(&self, panel: &Panel) -> Result<Vec<Document>> {
        let mut docs = Vec::with_capacity(panel.len());
        for w in panel.workers() {
            docs.extend(self.render(w)?.into_documents());
        }
        Ok(docs)
    }
}

/// The demographic fields that can be randomised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DemographicFields {
    /// Replace gender.
    pub gender: bool,
    /// Replace race/ethnicity.
    pub ethnicity: bool,
    /// Replace region.
    pub region: bool,
}

impl std::str::FromStr for DemographicFields {
    type Err = Error;
    /// Parses a comma-separated list such as `gender,ethnicity` (`all` for the three).
    fn from_str(s: &str) -> Result<Self> {
        let mut f = DemographicFields::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.to_ascii_lowercase().as_str() {
                "gender" => f.gender = true,
                "ethnicity" | "race" => f.ethnicity = true,
                "region" => f.region = true,
                "all" => {
                    f = DemographicFields {
                        gender: true,
                        ethnicity: true,
                        region: true,
                    }
                }
                other => {
                    return Err(Error::InvalidOption {
                        name: "randomize",
                        detail: format!("unknown field `{other}` (gender, ethnicity, region, all)"),
                    });
                }
            }
        }
        Ok(f)
    }
}

/// Test-time demographic randomisation: per worker, the chosen fields are replaced by those of a
/// worker drawn (seeded by the worker's id) from the training split, so the fields keep their
/// joint training distribution but lose their link to the career.
#[derive(Debug, Clone)]
struct Randomization {
    fields: DemographicFields,
    seed: u64,
    pool: Vec<(Gender, Ethnicity, Region)>,
}

impl Randomization {
    fn apply<'a>(&self, w: &'a Worker) -> Cow<'a, Worker> {
        let mut rng = SeededRng::with_stream(self.seed, id_stream(&w.id));
        let (g, e, r) = self.pool[rng.below(self.pool.len() as u64) as usize];
        let mut out = w.clone();
        if self.fields.gender {
            out.gender = g;
        }
        if self.fields.ethnicity {
            out.ethnicity = e;
        }
        if self.fields.region {
            out.region = r;
        }
        Cow::Owned(out)
    }
}

/// What is shared by every variant: taxonomy, wording, titles, options.
#[derive(Debug, Clone)]
struct Common {
    taxonomy: Arc<Taxonomy>,
    wording: Wording,
    numbered: Option<NumberedTitles>,
    birth_year: bool,
    dataset: Option<String>,
    rule: TargetRule,
    randomization: Option<Randomization>,
}

/// Which header/entry style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Resume,
    Prompt,
}

impl Common {
    fn check(&self, w: &Worker) -> Result<()> {
        if w.records.is_empty() {
            return Err(Error::EmptyWorker {
                worker_id: w.id.clone(),
            });
        }
        for r in &w.records {
            if self.taxonomy.get(r.state).is_none() {
                return Err(Error::UnknownState {
                    worker_id: w.id.clone(),
                    year: r.year,
                    state: r.state.0,
                    taxonomy: self.taxonomy.name().to_string(),
                });
            }
        }
        Ok(())
    }

    fn prepare<'a>(&self, w: &'a Worker) -> Result<Cow<'a, Worker>> {
        self.check(w)?;
        Ok(match &self.randomization {
            Some(r) => r.apply(w),
            None => Cow::Borrowed(w),
        })
    }

    fn title(&self, id: StateId) -> &str {
        match &self.numbered {
            Some(n) => n.label(id),
            None => self.taxonomy.title(id),
        }
    }

    fn fill(&self, template: &str, w: &Worker) -> String {
        let wd = &self.wording;
        let demographics: Vec<&str> = [wd.gender(w.gender), wd.ethnicity(w.ethnicity)]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        let residence = wd
            .region(w.region)
            .map_or(String::new(), |r| wd.residence.replace("{region}", r));
        let dataset = self
            .dataset
            .as_deref()
            .unwrap_or_else(|| wd.dataset(&w.dataset));
        let demographics = demographics.join(" ");
        // Without any label, drop the placeholder with its space ("a US worker").
        let template = if demographics.is_empty() {
            template.replace("{demographics} ", "")
        } else {
            template.to_string()
        };
        template
            .replace("{dataset}", dataset)
            .replace("{demographics}", &demographics)
            .replace("{residence}", &residence)
            .replace(
                "{birth_year}",
                &w.birth_year.map_or(String::new(), |b| b.to_string()),
            )
    }

    /// Header, demographic sentence, birth year and the records line, each ending in a newline.
    fn header(&self, style: Style, w: &Worker, out: &mut String) {
        let wd = &self.wording;
        let (head, intro, records) = match style {
            Style::Resume => (&wd.resume_header, &wd.resume_intro, &wd.resume_records),
            Style::Prompt => (&wd.prompt_header, &wd.prompt_intro, &wd.prompt_records),
        };
        for line in [head, intro] {
            out.push_str(&self.fill(line, w));
            out.push('\n');
        }
        if self.birth_year && w.birth_year.is_some() {
            out.push_str(&self.fill(&wd.birth_year, w));
            out.push('\n');
        }
        out.push_str(records);
        out.push('\n');
    }

    /// The open part of entry `k`: `1990 to 1991 (college):` or `1990 (college):`.
    fn entry_open(&self, style: Style, records: &[YearRecord], k: usize, out: &mut String) {
        let r = records[k];
        out.push_str(&r.year.to_string());
        if style == Style::Resume {
            out.push_str(" to ");
            match records.get(k + 1) {
                Some(next) => out.push_str(&next.year.to_string()),
                None => out.push_str(&self.wording.present),
            }
        }
        if let Some(e) = self.wording.education(r.education) {
            out.push_str(" (");
            out.push_str(e);
            out.push(')');
        }
        out.push(':');
    }

    /// `" {title}{terminator}"` of a state checked against the taxonomy.
    fn continuation_of(&self, id: StateId) -> Result<String> {
        if self.taxonomy.get(id).is_none() {
            return Err(Error::UnknownState {
                worker_id: String::new(),
                year: 0,
                state: id.0,
                taxonomy: self.taxonomy.name().to_string(),
            });
        }
        let mut out = String::new();
        self.continuation(id, &mut out);
        Ok(out)
    }

    /// Appends `" {title}{terminator}"`.
    fn continuation(&self, id: StateId, out: &mut String) {
        out.push(' ');
        out.push_str(self.title(id));
        out.push_str(&self.wording.terminator);
    }

    /// Renders the entries of `w` (all of them), recording targets; returns them.
    fn entries(
        &self,
        style: Style,
        w: &Worker,
        out: &mut String,
        with_targets: bool,
    ) -> Vec<Target> {
        let mut targets = Vec::new();
        for k in 0..w.records.len() {
            self.entry_open(style, &w.records, k, out);
            if with_targets && self.rule.selects_record(w, k) {
                targets.push(self.target_of(w, k, out));
            } else {
                self.continuation(w.records[k].state, out);
            }
        }
        targets
    }

    /// Header, entries `0..k` and the open line of entry `k`.
    fn prompt_text(&self, style: Style, w: &Worker, k: usize, out: &mut String) {
        self.header(style, w, out);
        for j in 0..k {
            self.entry_open(style, &w.records, j, out);
            self.continuation(w.records[j].state, out);
        }
        self.entry_open(style, &w.records, k, out);
    }

    /// The list of valid titles (every outcome of the taxonomy, in id order).
    fn titles_block(&self, out: &mut String) {
        out.push_str(&self.wording.titles_intro);
        out.push('\n');
        for (id, _) in self.taxonomy.outcomes() {
            out.push_str(self.title(id));
            out.push('\n');
        }
        out.push_str(&self.wording.example_separator);
    }

    /// Appends the continuation of record `k` (the prompt ends where `text` ends) and returns
    /// its target.
    fn target_of(&self, w: &Worker, k: usize, text: &mut String) -> Target {
        let start = text.len();
        self.continuation(w.records[k].state, text);
        Target {
            record: k,
            year: w.records[k].year,
            state_id: w.records[k].state,
            previous_state_id: k.checked_sub(1).map(|j| w.records[j].state),
            title: self.title(w.records[k].state).to_string(),
            prompt_end: start,
            continuation_start: start,
            continuation_end: text.len(),
        }
    }
}

fn check_index(w: &Worker, k: usize) -> Result<()> {
    if k < w.records.len() {
        Ok(())
    } else {
        Err(Error::RecordOutOfRange {
            worker_id: w.id.clone(),
            index: k,
            len: w.records.len(),
        })
    }
}

/// Template 1: the fine-tuning resume (`<A Resume from the NLSY79 Dataset>` … `<END OF RESUME>`),
/// entries as year spans (`1988 to 1989 (college): Title`, the last `... to present`).
#[derive(Debug, Clone)]
pub struct ResumeTemplate {
    common: Common,
}

impl Template for ResumeTemplate {
    fn continuation(&self, state: StateId) -> Result<String> {
        self.common.continuation_of(state)
    }

    fn name(&self) -> &'static str {
        "resume"
    }

    fn layout(&self) -> Layout {
        Layout::Shared
    }

    fn render(&self, worker: &Worker) -> Result<Rendered> {
        let w = self.common.prepare(worker)?;
        let mut text = String::with_capacity(256 + 64 * w.records.len());
        self.common.header(Style::Resume, &w, &mut text);
        let targets = self.common.entries(Style::Resume, &w, &mut text, true);
        text.push_str(&self.common.wording.resume_footer);
        Ok(Rendered::Shared(Document {
            worker_id: w.id.clone(),
            text,
            targets,
        }))
    }

    fn prompt(&self, worker: &Worker, k: usize) -> Result<String> {
        check_index(worker, k)?;
        let w = self.common.prepare(worker)?;
        let mut text = String::new();
        self.common.prompt_text(Style::Resume, &w, k, &mut text);
        Ok(text)
    }
}

/// Templates 2 and 3: the prompt for models that were not fine-tuned
/// (`<A worker from the PSID dataset>` …, one line per year, `1990 (graduate degree):`),
/// optionally preceded by the list of all valid job titles.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    common: Common,
    with_titles: bool,
}

impl Template for PromptTemplate {
    fn continuation(&self, state: StateId) -> Result<String> {
        self.common.continuation_of(state)
    }

    fn name(&self) -> &'static str {
        if self.with_titles {
            "prompt-titles"
        } else {
            "prompt"
        }
    }

    fn layout(&self) -> Layout {
        Layout::Shared
    }

    fn render(&self, worker: &Worker) -> Result<Rendered> {
        let w = self.common.prepare(worker)?;
        let mut text = String::new();
        if self.with_titles {
            self.common.titles_block(&mut text);
        }
        self.common.header(Style::Prompt, &w, &mut text);
        let targets = self.common.entries(Style::Prompt, &w, &mut text, true);
        Ok(Rendered::Shared(Document {
            worker_id: w.id.clone(),
            text,
            targets,
        }))
    }

    fn prompt(&self, worker: &Worker, k: usize) -> Result<String> {
        check_index(worker, k)?;
        let w = self.common.prepare(worker)?;
        let mut text = String::new();
        if self.with_titles {
            self.common.titles_block(&mut text);
        }
        self.common.prompt_text(Style::Prompt, &w, k, &mut text);
        Ok(text)
    }
}

/// When in-context examples are drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IclSampling {
    /// New examples for every target ([`Layout::PerTarget`]).
    #[default]
    PerTarget,
    /// One set of examples per worker, shared by its targets ([`Layout::Shared`]).
    PerWorker,
}

/// Template 4: K complete example careers of other training workers, then the prompt.
#[derive(Debug, Clone)]
pub struct IclTemplate {
    common: Common,
    with_titles: bool,
    k: usize,
    seed: u64,
    pool: Arc<Panel>,
    sampling: IclSampling,
}

impl IclTemplate {
    /// Indices into the pool of the examples for `worker` (and target `k` when drawn per
    /// target): K distinct workers, never `worker` itself.
    pub fn examples(&self, worker: &Worker, k: usize) -> Result<Vec<usize>> {
        let n = self.pool.len();
        let own = self.pool.workers().iter().position(|p| p.id == worker.id);
        let available = n - usize::from(own.is_some());
        if available < self.k {
            return Err(Error::EmptyPool {
                what: "in-context example pool (fewer workers than examples asked for)",
            });
        }
        let stream = match self.sampling {
            IclSampling::PerTarget => {
                id_stream(&worker.id) ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            }
            IclSampling::PerWorker => id_stream(&worker.id),
        };
        let mut rng = SeededRng::with_stream(self.seed, stream);
        // Partial Fisher-Yates over the pool without the worker.
        let mut idx: Vec<usize> = (0..n).filter(|i| Some(*i) != own).collect();
        for i in 0..self.k {
            let j = i + rng.below((idx.len() - i) as u64) as usize;
            idx.swap(i, j);
        }
        idx.truncate(self.k);
        Ok(idx)
    }

    fn examples_text(&self, worker: &Worker, k: usize, out: &mut String) -> Result<()> {
        if self.with_titles {
            self.common.titles_block(out);
        }
        for i in self.examples(worker, k)? {
            let ex = &self.pool.workers()[i];
            self.common.check(ex)?;
            self.common.header(Style::Prompt, ex, out);
            self.common.entries(Style::Prompt, ex, out, false);
            out.push_str(&self.common.wording.example_separator);
        }
        Ok(())
    }
}

impl Template for IclTemplate {
    fn continuation(&self, state: StateId) -> Result<String> {
        self.common.continuation_of(state)
    }

    fn name(&self) -> &'static str {
        "icl"
    }

    fn layout(&self) -> Layout {
        match self.sampling {
            IclSampling::PerTarget => Layout::PerTarget,
            IclSampling::PerWorker => Layout::Shared,
        }
    }

    fn render(&self, worker: &Worker) -> Result<Rendered> {
        let w = self.common.prepare(worker)?;
        match self.sampling {
            IclSampling::PerWorker => {
                let mut text = String::new();
                self.examples_text(&w, 0, &mut text)?;
                self.common.header(Style::Prompt, &w, &mut text);
                let targets = self.common.entries(Style::Prompt, &w, &mut text, true);
                Ok(Rendered::Shared(Document {
                    worker_id: w.id.clone(),
                    text,
                    targets,
                }))
            }
            IclSampling::PerTarget => {
                let mut docs = Vec::new();
                for k in (0..w.records.len()).filter(|k| self.common.rule.selects_record(&w, *k)) {
                    let mut text = String::new();
                    self.examples_text(&w, k, &mut text)?;
                    self.common.prompt_text(Style::Prompt, &w, k, &mut text);
                    let target = self.common.target_of(&w, k, &mut text);
                    docs.push(Document {
                        worker_id: w.id.clone(),
                        text,
                        targets: vec![target],
                    });
                }
                Ok(Rendered::PerTarget(docs))
            }
        }
    }

    fn prompt(&self, worker: &Worker, k: usize) -> Result<String> {
        check_index(worker, k)?;
        let w = self.common.prepare(worker)?;
        let mut text = String::new();
        self.examples_text(&w, k, &mut text)?;
        self.common.prompt_text(Style::Prompt, &w, k, &mut text);
        Ok(text)
    }
}

/// The template variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TemplateKind {
    /// The fine-tuning resume.
    Resume,
    /// The prompt without the list of titles.
    Prompt,
    /// The prompt with the list of all valid titles first.
    PromptWithTitles,
    /// In-context examples, then the prompt (with or without the list of titles).
    Icl {
        /// Put the list of valid titles first.
        with_titles: bool,
    },
}

impl std::str::FromStr for TemplateKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "resume" => Ok(TemplateKind::Resume),
            "prompt" => Ok(TemplateKind::Prompt),
            "prompt-titles" => Ok(TemplateKind::PromptWithTitles),
            "icl" => Ok(TemplateKind::Icl { with_titles: false }),
            "icl-titles" => Ok(TemplateKind::Icl { with_titles: true }),
            other => Err(Error::InvalidOption {
                name: "template",
                detail: format!(
                    "unknown template `{other}` (resume, prompt, prompt-titles, icl, icl-titles)"
                ),
            }),
        }
    }
}

/// Configures a [`Template`].
#[derive(Debug, Clone)]
pub struct TemplateBuilder {
    taxonomy: Arc<Taxonomy>,
    kind: TemplateKind,
    wording: Wording,
    birth_year: Option<bool>,
    dataset: Option<String>,
    rule: TargetRule,
    numbered_seed: Option<u64>,
    randomize: Option<(DemographicFields, u64, Arc<Panel>)>,
    icl_k: usize,
    icl_seed: u64,
    icl_pool: Option<Arc<Panel>>,
    icl_sampling: IclSampling,
}

impl TemplateBuilder {
    /// A builder for `kind` over `taxonomy`, with the paper's defaults: its wording, the birth
    /// year in prompts but not in resumes (as in the talk's examples), every worker-year a
    /// target, 10 in-context examples drawn per target with seed 0.
    pub fn new(taxonomy: Arc<Taxonomy>, kind: TemplateKind) -> Self {
        Self {
            taxonomy,
            kind,
            wording: Wording::default(),
            birth_year: None,
            dataset: None,
            rule: TargetRule::All,
            numbered_seed: None,
            randomize: None,
            icl_k: 10,
            icl_seed: 0,
            icl_pool: None,
            icl_sampling: IclSampling::PerTarget,
        }
    }

    /// Every literal string.
    #[must_use]
    pub fn with_wording(mut self, wording: Wording) -> Self {
        self.wording = wording;
        self
    }

    /// Whether the birth-year sentence is written (when the birth year is known).
    #[must_use]
    pub fn with_birth_year(mut self, on: bool) -> Self {
        self.birth_year = Some(on);
        self
    }

    /// Overrides the dataset name shown in headers (default: the worker's dataset, displayed
    /// through [`Wording::dataset_names`]).
    #[must_use]
    pub fn with_dataset_name(mut self, name: impl Into<String>) -> Self {
        self.dataset = Some(name.into());
        self
    }

    /// The entry terminator (default `"\n"`).
    #[must_use]
    pub fn with_terminator(mut self, terminator: impl Into<String>) -> Self {
        self.wording.terminator = terminator.into();
        self
    }

    /// Which worker-years are targets.
    #[must_use]
    pub fn with_targets(mut self, rule: TargetRule) -> Self {
        self.rule = rule;
        self
    }

    /// Replace every title by its `job_NNN` label from the taxonomy's permutation for `seed`.
    #[must_use]
    pub fn with_numbered_titles(mut self, seed: u64) -> Self {
        self.numbered_seed = Some(seed);
        self
    }

    /// Randomise `fields` per worker from the workers of `train` (seeded).
    #[must_use]
    pub fn with_randomization(
        mut self,
        fields: DemographicFields,
        seed: u64,
        train: Arc<Panel>,
    ) -> Self {
        self.randomize = Some((fields, seed, train));
        self
    }

    /// Number of in-context examples (default 10, as in the paper).
    #[must_use]
    pub fn with_icl_examples(mut self, k: usize) -> Self {
        self.icl_k = k;
        self
    }

    /// Seed of the in-context example draws.
    #[must_use]
    pub fn with_icl_seed(mut self, seed: u64) -> Self {
        self.icl_seed = seed;
        self
    }

    /// The workers examples are drawn from: the training split.
    #[must_use]
    pub fn with_icl_pool(mut self, train: Arc<Panel>) -> Self {
        self.icl_pool = Some(train);
        self
    }

    /// Draw examples per target (default) or per worker.
    #[must_use]
    pub fn with_icl_sampling(mut self, sampling: IclSampling) -> Self {
        self.icl_sampling = sampling;
        self
    }

    /// Builds an in-context template as its concrete type (to inspect the examples it draws).
    ///
    /// # Errors
    /// As [`TemplateBuilder::build`], and [`Error::InvalidOption`] if the kind is not
    /// [`TemplateKind::Icl`].
    pub fn build_icl(self) -> Result<IclTemplate> {
        let TemplateKind::Icl { with_titles } = self.kind else {
            return Err(Error::InvalidOption {
                name: "template",
                detail: "build_icl needs an in-context kind".into(),
            });
        };
        let (pool, k, seed, sampling) = (
            self.icl_pool.clone(),
            self.icl_k,
            self.icl_seed,
            self.icl_sampling,
        );
        let common = self.common()?;
        Self::icl(common, with_titles, pool, k, seed, sampling)
    }

    fn icl(
        common: Common,
        with_titles: bool,
        pool: Option<Arc<Panel>>,
        k: usize,
        seed: u64,
        sampling: IclSampling,
    ) -> Result<IclTemplate> {
        let invalid = |detail: &str| {
            Err(Error::InvalidOption {
                name: "icl",
                detail: detail.to_string(),
            })
        };
        let Some(pool) = pool else {
            return invalid("in-context learning needs a pool of training workers");
        };
        if k == 0 {
            return invalid("the number of examples must be at least 1");
        }
        if **pool.taxonomy() != *common.taxonomy {
            return invalid("the example pool uses another taxonomy");
        }
        if pool.is_empty() {
            return Err(Error::EmptyPool {
                what: "in-context example pool",
            });
        }
        Ok(IclTemplate {
            common,
            with_titles,
            k,
            seed,
            pool,
            sampling,
        })
    }

    /// Checks the options and builds the template.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for an empty terminator or one that occurs in a title, a pool
    /// over another taxonomy, zero examples, or an in-context template without a pool;
    /// [`Error::EmptyPool`] for an empty randomisation or example pool.
    pub fn build(self) -> Result<Box<dyn Template>> {
        let (kind, pool, k, seed, sampling) = (
            self.kind,
            self.icl_pool.clone(),
            self.icl_k,
            self.icl_seed,
            self.icl_sampling,
        );
        let common = self.common()?;
        Ok(match kind {
            TemplateKind::Resume => Box::new(ResumeTemplate { common }),
            TemplateKind::Prompt => Box::new(PromptTemplate {
                common,
                with_titles: false,
            }),
            TemplateKind::PromptWithTitles => Box::new(PromptTemplate {
                common,
                with_titles: true,
            }),
            TemplateKind::Icl { with_titles } => {
                Box::new(Self::icl(common, with_titles, pool, k, seed, sampling)?)
            }
        })
    }

    fn common(self) -> Result<Common> {
        let invalid = |name, detail: String| Err(Error::InvalidOption { name, detail });
        if self.wording.terminator.is_empty() {
            return invalid(
                "terminator",
                "must not be empty: it closes every continuation".into(),
            );
        }
        let numbered = self.numbered_seed.map(|s| self.taxonomy.numbered(s));
        for (id, o) in self.taxonomy.outcomes() {
            let t = numbered.as_ref().map_or(o.title.as_str(), |n| n.label(id));
            if t.contains(self.wording.terminator.as_str()) {
                return invalid(
                    "terminator",
                    format!("{:?} occurs in the title `{t}`", self.wording.terminator),
                );
            }
        }
        let randomization = match self.randomize {
            None => None,
            Some((fields, seed, pool)) => {
                if **pool.taxonomy() != *self.taxonomy {
                    return invalid(
                        "randomize",
                        "the training panel uses another taxonomy".into(),
                    );
                }
                if pool.is_empty() {
                    return Err(Error::EmptyPool {
                        what: "randomisation pool",
                    });
                }
                Some(Randomization {
                    fields,
                    seed,
                    pool: pool
                        .workers()
                        .iter()
                        .map(|w| (w.gender, w.ethnicity, w.region))
                        .collect(),
                })
            }
        };
        let default_birth = !matches!(self.kind, TemplateKind::Resume);
        let common = Common {
            taxonomy: self.taxonomy,
            wording: self.wording,
            numbered,
            birth_year: self.birth_year.unwrap_or(default_birth),
            dataset: self.dataset,
            rule: self.rule,
            randomization,
        };
        Ok(common)
    }
}
