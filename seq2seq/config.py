"""Dataclass schemas for every config group, registered in Hydra's ConfigStore.

Each YAML file under ``configs/<group>/`` starts from the schema registered here as
``schema/<group>/<name>``, so a misspelt key or a value of the wrong type or outside an
enum fails at start-up, before any work, with a message naming the valid choices.

The attention schemas live with their variants (seq2seq/modules/attention/) and the model
schemas with their families (seq2seq/models/): this module registers whatever the two
registries hold, and names no variant and no family.

Enums are used wherever a value is one of a closed set (OmegaConf lists the members when a
value is invalid). Model code never sees these objects: builders in ``seq2seq.models.builders``
turn them into flat keyword arguments.
"""

from __future__ import annotations

import copy
import functools
import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, OmegaConf

from . import decode_defaults
from .models.registry import model_family, model_schemas
from .modules.attention import attention_schemas
from .modules.attention.registry import preset_model_options, preset_options

# --------------------------------------------------------------------------- enums


class SpmType(str, Enum):
    bpe = "bpe"
    unigram = "unigram"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


def option_value(option: Any) -> str:
    """A config choice as its string: an enum member's value, or the string a DictConfig or a
    caller passed as is."""
    return str(getattr(option, "value", option))


class Precision(str, Enum):
    auto = "auto"  # bf16 where the hardware has it (CPU AVX512-BF16/AMX, CUDA Ampere+), else fp32
    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"


# decoding's precisions (seq2seq-evaluate / seq2seq-translate): training's, plus int8 (CPU:
# Linear layers dynamically quantized, seq2seq/decoding/quantize.py)
DecodePrecision = Enum(
    "DecodePrecision",
    {**{member.name: member.value for member in Precision}, "int8": "int8"},
    type=str,
    module=__name__,
)


class StopMetric(str, Enum):
    bleu = "bleu"
    loss = "loss"


class OptimizerName(str, Enum):
    adam = "adam"
    adamw = "adamw"


class Schedule(str, Enum):
    constant = "constant"
    plateau = "plateau"  # reduce on plateau of validation BLEU
    noam = "noam"  # inverse square root with linear warm-up
    cosine = "cosine"  # linear warm-up, then a cosine down to min_lr at decay_steps


# --------------------------------------------------------------------------- data


def default_data_dir(
    corpus: str, hub_id: str | None = None, stands_in_for: str | None = None
) -> str | None:
    """Local raw copy of ``corpus``: ``$SEQ2SEQ_DATA/<corpus>``, else ``../shared/data/<corpus>``
    beside the project checkout (or the working directory) when it exists, else None (hub).

    A preset's default ``dir`` is its local copy only while ``data.hub_id`` is the hub dataset
    that copy stands for (``stands_in_for``; None for a corpus with no hub copy): an explicit
    ``data.hub_id=OTHER`` then resolves ``dir`` to None, so the hub id is loaded, not ignored.
    ``${local_corpus:multi30k,${.hub_id},bentrevett/multi30k}`` in configs/data/multi30k.yaml.
    """
    if hub_id is not None and hub_id != stands_in_for:
        return None
    candidates = []
    if os.environ.get("SEQ2SEQ_DATA"):
        candidates.append(Path(os.environ["SEQ2SEQ_DATA"]) / corpus)
    repo_root = Path(__file__).resolve().parent.parent
    candidates += [
        repo_root.parent / "shared" / "data" / corpus,
        Path.cwd().parent / "shared" / "data" / corpus,
    ]
    for path in candidates:
        if path.is_dir():
            return str(path)
    return None


if not OmegaConf.has_resolver("local_corpus"):
    OmegaConf.register_new_resolver("local_corpus", default_data_dir)


@dataclass
class VocabConfig:
    type: SpmType = SpmType.bpe
    size: int = 8000
    joint: bool = True  # one model for both languages (needed to share embeddings)
    character_coverage: float = 1.0


class DataFormat(str, Enum):
    """Layouts of a local copy (``data.dir``); each split's file is named by ``data.files``."""

    text = "text"  # {stem}.{lang}[.gz]: one sentence per line, line i of each file a pair
    tsv = "tsv"  # {stem}.tsv[.gz]: `first<TAB>second` per line, no header (see DataConfig)
    json = "json"  # {stem}.jsonl / {stem}.json[.gz], datasets' json builder; columns as on the hub
    parquet = "parquet"  # {stem}.parquet, datasets' parquet builder; columns as on the hub


@dataclass
class ColumnsConfig:
    """The dataset's columns holding each side (``data.columns.src=translation.en``); None:
    the column named ``data.src`` (``data.tgt``), else that field of a ``translation`` column."""

    src: str | None = None
    tgt: str | None = None


@dataclass
class CarveConfig:
    """Validation/test cut out of train (for train-only corpora such as opus_books): a seeded
    random choice of pairs, disjoint from each other and from what train keeps; train keeps its
    order. A carved split is never read from the source, even where the source has one."""

    validation: int = 0  # pairs; 0: not carved
    test: int = 0
    seed: int = 1


@dataclass
class DataConfig:
    """Where a corpus comes from and how its rows become (source, target) pairs.

    Precedence: ``dir`` (local files) wins over ``hub_id`` when both are set, and the log says
    so in one line. A preset's default ``dir`` is its local copy only while ``hub_id`` is the
    preset's own (``${local_corpus:NAME,${.hub_id},HUB_ID}``): ``data.hub_id=OTHER`` alone
    loads OTHER from the hub; ``data.dir=null`` forces the hub for the preset's own id.
    """

    name: str = MISSING
    src: str = MISSING
    tgt: str = MISSING
    languages: list[str] = field(default_factory=list)  # the languages the corpus has
    # local copy: a directory of files in `format`; wins over hub_id when both are set
    dir: str | None = None
    # text: {stem}.{lang}[.gz]; tsv: {stem}.tsv[.gz] with the columns named, in file order, by
    # `languages` (default [src, tgt]); json / parquet: {stem}.jsonl|json[.gz] / {stem}.parquet
    format: DataFormat = DataFormat.text
    # hub dataset (datasets.load_dataset path): `owner/name`, or a local copy of a hub repo
    hub_id: str | None = None
    hub_config: str | None = None  # the dataset's config name (load_dataset's `name`), e.g. de-en
    revision: str | None = None  # branch, tag or commit, e.g. refs/convert/parquet; None: main
    # offline copies of hub repos: hub_id owner/name loads DIR/owner/name (DIR/owner/name@REV
    # for a revision), a directory laid out as the repo is (files, README.md configs)
    hub_mirror: str | None = "${oc.env:SEQ2SEQ_HUB_MIRROR,null}"
    # more keyword arguments of datasets.load_dataset, e.g. {data_dir: iwslt2017-de-en}
    load_kwargs: dict[str, Any] = field(default_factory=dict)
    # {src: COLUMN, tgt: COLUMN}; a field of a struct column as `translation.de`. Unset: the
    # column named data.src (data.tgt), else that field of a `translation` column
    columns: ColumnsConfig = field(default_factory=ColumnsConfig)
    # split name in the code -> file stem in `dir` / split name on the hub
    files: dict[str, str] = field(default_factory=dict)
    hub_splits: dict[str, str] = field(
        default_factory=lambda: {"train": "train", "validation": "validation", "test": "test"}
    )
    carve: CarveConfig = field(default_factory=CarveConfig)  # validation/test cut from train
    max_len: int = 100  # subword tokens; train-time filter only
    train_limit: int | None = None  # first N pairs (quick runs)
    eval_limit: int | None = None
    max_tokens: int = 4096  # padded tokens per batch, each side
    # gold word alignments of the test split, a file in `dir` (e.g. test.align; its format:
    # alignment.gold_format, gold_index_base, gold_reversed): the end of training then reports
    # test_aer of the teacher-forced attention (the reversal corpus has them)
    test_alignments: str | None = None
    vocab: VocabConfig = field(default_factory=VocabConfig)
    cache_dir: str = "${oc.env:SEQ2SEQ_CACHE,data/cache}"
    progress: bool | None = None  # a bar while splits are tokenized; None: only on a terminal


# --------------------------------------------------------------------------- models

# Each model family's schema lives with its class in seq2seq/models/, registered with it by
# @register_model.


# --------------------------------------------------------------------------- attention

# AttentionConfig (the fields every variant has) and each variant's schema live in
# seq2seq/modules/attention/, registered with the class by @register_attention.


# --------------------------------------------------------------------------- training


@dataclass
class OptimConfig:
    name: OptimizerName = OptimizerName.adam
    lr: float = 1e-3
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    weight_decay: float = 0.0
    schedule: Schedule = Schedule.constant
    warmup_steps: int = 4000  # noam, cosine
    decay_steps: int | None = None  # cosine: the update at which the lr reaches min_lr
    plateau_factor: float = 0.5
    plateau_patience: int = 2  # validations without improvement before the lr is cut
    min_lr: float = 1e-6
    clip_grad_norm: float = 1.0  # <= 0 disables
    accumulate: int = 1  # batches per optimizer step


@dataclass
class TrainerConfig:
    max_steps: int | None = None
    max_epochs: int | None = 30
    max_time: float | None = None  # seconds of training wall time
    device: Device = Device.auto
    precision: Precision = Precision.fp32
    compile: bool = False
    seed: int = 1234
    label_smoothing: float = 0.1
    val_every: int = 500  # steps
    # greedy validation stops at this x source length (by default decoding's own limit)
    val_max_len_ratio: float = decode_defaults.MAX_LEN_RATIO
    patience: int | None = 10  # validations without improvement of stop_on; None disables
    # what patience watches: validation BLEU (up) or validation loss (down; smoother than greedy
    # BLEU); the best checkpoint follows validation BLEU either way
    stop_on: StopMetric = StopMetric.bleu
    # the gain (BLEU points, or nats of loss) a validation must make over the one that last
    # reset the patience count, to reset it again (a run ended by patience is converged: true)
    min_delta: float = 0.0
    log_every: int = 50
    resume: bool = False  # continue the run in hydra.run.dir from its last checkpoint
    overwrite: bool = False  # replace a finished or unfinished run in hydra.run.dir
    num_threads: int | None = None  # intra-op threads; None: all cores
    max_bad_steps: int = 10  # consecutive non-finite losses before training stops
    # keep the weights of the last N validations as checkpoints/step_<N>.pt (seq2seq-average)
    keep_last: int = 0
    heatmaps: int = 3  # validation sentences drawn to TensorBoard each validation
    # greedy BLEU on the first N validation sentences only (None: all): cheap enough to validate
    # often (dense curves); the loss is always over the whole validation split
    val_bleu_limit: int | None = None


@dataclass
class DecodeConfig:
    beam_size: int = decode_defaults.BEAM_SIZE
    alpha: float = decode_defaults.ALPHA  # GNMT length penalty ((5 + len) / 6) ** alpha
    max_len_ratio: float = decode_defaults.MAX_LEN_RATIO
    # max output length = ceil(ratio * src_len) + offset
    max_len_offset: int = decode_defaults.MAX_LEN_OFFSET
    nbest: int = 1
    progress: bool | None = None  # a progress bar on stderr; None: when stderr is a terminal
    batch_size: int = 64  # sentences decoded together
    # batches decoded concurrently on CPU, each with threads/workers intra-op threads;
    # None: one per thread (2 cores: 2 streams of 1 thread). Ignored on GPUs.
    workers: int | None = None


class GoldFormat(str, Enum):
    """How a gold alignment file writes its links (``alignment.gold_format``)."""

    pharaoh = "pharaoh"  # one line per pair: i-j sure; ipj, i?j or i-j-P possible; i-j-S sure
    wpt = "wpt"  # WPT 2003/2005: one link per line, `sentence i j [S|P] [confidence]`


# alignment.hard: word links from a word-level matrix
HARD_ALIGNMENTS = ("argmax", "threshold")
# alignment.symmetrize (null or none: this run's own direction alone); grow-diag* as in Koehn et
# al. 2003 / Moses (seq2seq/evaluation/alignments.py: symmetrize)
SYMMETRIZATIONS = ("intersection", "union", "grow-diag", "grow-diag-final", "grow-diag-final-and")


@dataclass
class AlignmentConfig:
    """Soft alignments -> word links, and the gold links they are scored against.

    The extraction options (layer, head, shift, symmetrize) apply where the model is forced to
    read a reference and its attention is scored against gold links (AER: seq2seq-evaluate
    gold_alignments=, training's data.test_alignments, seq2seq-align-baseline); the dumps and
    heatmaps of decoded hypotheses are always model.alignment_layer / model.alignment_head.
    """

    plot_ids: list[int] | None = None
    plot_first: int = 5
    hard: str = "argmax"  # argmax | threshold
    threshold: float = 0.3
    # Transformer decoder layer whose cross-attention is the alignment: an index (negative counts
    # from the end) or mean (the average over layers); null: the run's model.alignment_layer
    layer: str | None = None
    # its head: an index or mean (the average of heads); null: the run's model.alignment_head
    head: str | None = None
    # shift-att (Chen et al. 2020): target word t's alignment is the attention of decoder step
    # t+1, the step that reads t as its input (the row of the next target token)
    shift: bool = False
    # null (or none) | intersection | union | grow-diag | grow-diag-final | grow-diag-final-and:
    # combine this run's links with reverse_run_dir's, a run trained in the other direction
    symmetrize: str | None = None
    reverse_run_dir: str | None = None
    # the gold links: their format, whether indices start at 0 or 1, and their order: src-tgt of
    # the model's direction, or (gold_reversed=true) tgt-src, which swaps them (and the sides of
    # a gold_text= file)
    gold_format: GoldFormat = GoldFormat.pharaoh
    gold_index_base: int = 0
    gold_reversed: bool = False


@dataclass
class BleuConfig:
    """How BLEU is scored: the same node for validation, the final test (seq2seq-train) and
    seq2seq-evaluate; seq2seq-compare reads each run's from its record."""

    # sacreBLEU's tokenizer (sacrebleu -tok): 13a (WMT's mteval-v13a) | intl | zh | char | none |
    # ja-mecab (pip install "seq2seq[ja]") | ko-mecab ("seq2seq[ko]") | flores101 | flores200 |
    # spm | spBLEU-1K (sentencepiece models sacreBLEU downloads into $SACREBLEU/models).
    # seq2seq-evaluate: null (its default) scores with the run's own
    tokenize: str | None = "13a"


class LoggerName(str, Enum):
    tensorboard = "tensorboard"
    wandb = "wandb"  # pip install "seq2seq[wandb]"
    mlflow = "mlflow"  # pip install "seq2seq[mlflow]"
    off = "off"


@dataclass
class LoggerConfig:
    """Where training reports its scalars and attention figures (``logger=<name>``)."""

    name: LoggerName = LoggerName.tensorboard
    project: str = "seq2seq"  # W&B project / MLflow experiment
    run_name: str | None = None  # None: the run directory's name
    # wandb: online | offline (files under run_dir/wandb, `wandb sync` uploads them) | disabled
    mode: str = "offline"
    entity: str | None = None  # wandb team or user
    # mlflow: None -> a file store in run_dir/mlruns (`mlflow ui --backend-store-uri ...`)
    tracking_uri: str | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass
class TrainConfig:
    data: Any = MISSING
    model: Any = MISSING
    attention: Any = MISSING
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    bleu: BleuConfig = field(default_factory=BleuConfig)
    dump_alignments: bool = False
    run_dir: str = "${job_output_dir:}"
    # a sweep kept in step with a folder of summaries (seq2seq-compare --export's layout): a job
    # whose summary lies in DIR/<sweep dir name>/<job dir name>, trained by this commit with this
    # config, is skipped; a job that finishes writes its summary there
    exported_runs: str | None = None


@dataclass
class EvaluateConfig:
    run_dir: str = MISSING  # a training run's directory
    checkpoint: str = "best"  # best | last
    split: str = "test"  # test | validation (ignored when src_file is given)
    src_file: str | None = None  # any source text, one sentence per line
    ref_file: str | None = None  # its references (BLEU/chrF when given)
    # a sacreBLEU test set (sacrebleu -t, e.g. wmt14): its sources and references, read through
    # sacreBLEU's dataset API from $SACREBLEU (default ~/.sacrebleu), downloaded when missing
    test_set: str | None = None
    langpair: str | None = None  # its pair (sacrebleu -l, e.g. en-de); null: data.src-data.tgt
    # results go to run_dir/eval/<name>; default: <split, file or test set_pair>_beam<N>
    name: str | None = None
    limit: int | None = None  # first N lines only
    device: Device = Device.auto
    precision: DecodePrecision = DecodePrecision.fp32
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    # BLEU's tokenizer; null: the run's own bleu.tokenize (13a for runs made before it existed)
    bleu: BleuConfig = field(default_factory=lambda: BleuConfig(tokenize=None))
    dump_alignments: bool = False
    # gold links (format: alignment.gold_*): AER of the teacher-forced attention
    gold_alignments: str | None = None
    # the pairs the gold links describe as one file of `source ||| target` lines (pre-tokenized:
    # its tokens are the words the links index); else src_file= and ref_file=
    gold_text: str | None = None
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    print_alignment: bool = False  # translate: append a tab and the Pharaoh word alignment


@dataclass
class EflomalConfig:
    """eflomal (Östling and Tiedemann 2016; ``pip install "seq2seq[align]"``): a Bayesian IBM
    model aligner, the anchor seq2seq-align-baseline scores beside attention."""

    model: int = 3  # 1: IBM1, 2: + HMM jumps, 3: + fertility (eflomal's default)
    n_samplers: int = 3  # independent Gibbs samplers, averaged
    rel_iterations: float = 1.0  # iterations relative to eflomal's defaults
    null_prior: float = 0.2  # prior probability of a NULL alignment
    # both directions combined (forward = source -> target); grow-diag-final: Koehn et al. 2003
    # with final (Moses' default), the same function as alignment.symmetrize
    symmetrize: str = "grow-diag-final"
    # words of the training corpus: 13a (sacreBLEU's Moses-like tokenizer: punctuation split off,
    # like the gold's pre-tokenized words) or none (whitespace); the gold pairs are their tokens
    tokenize: str = "13a"


@dataclass
class AlignBaselineConfig:
    """seq2seq-align-baseline: eflomal trained on ``data``'s training split plus the gold
    pairs, and each of ``run_dirs``' teacher-forced attention (with ``alignment``'s options),
    scored against the same gold links by the same AER function."""

    # the corpus eflomal trains on: the runs' data config (data=, data.src=, data.tgt=, ...)
    data: Any = MISSING
    gold_alignments: str = MISSING  # the gold links (alignment.gold_format etc.)
    gold_text: str | None = None  # `source ||| target` lines; else src_file= and ref_file=
    src_file: str | None = None
    ref_file: str | None = None
    limit: int | None = None  # the first N gold pairs only
    # runs scored beside eflomal, with alignment's options (each translating data.src -> data.tgt)
    run_dirs: list[str] = field(default_factory=list)
    checkpoint: str = "best"
    device: Device = Device.auto
    alignment: AlignmentConfig = field(default_factory=AlignmentConfig)
    eflomal: EflomalConfig = field(default_factory=EflomalConfig)
    out: str | None = None  # also write the table's rows as JSON here


class ExportFormat(str, Enum):
    ctranslate2 = "ctranslate2"  # a CTranslate2 model directory (Transformer runs)


class ExportQuantization(str, Enum):
    """CTranslate2's weight types (``ctranslate2.specs.model_spec.ACCEPTED_MODEL_TYPES``)."""

    float32 = "float32"  # the weights as trained
    int8 = "int8"
    int8_float32 = "int8_float32"
    int8_float16 = "int8_float16"
    int8_bfloat16 = "int8_bfloat16"
    int16 = "int16"
    float16 = "float16"
    bfloat16 = "bfloat16"


@dataclass
class ExportConfig:
    """seq2seq-export: a trained run's model for another inference engine."""

    run_dir: str = MISSING  # a training run's directory
    format: ExportFormat = ExportFormat.ctranslate2
    out: str | None = None  # default: <run_dir>/export/<format>
    checkpoint: str = "best"  # best | last | any checkpoints/<name>.pt (avg_last5, step_N)
    # the weight type stored in model.bin; CTranslate2 converts again at load (compute_type=)
    quantization: ExportQuantization = ExportQuantization.float32
    overwrite: bool = False  # replace an earlier export at out (never another directory)


# group -> option -> schema of the fixed groups; schemas() adds the two registries' as they are
# when called (so they include a variant or family registered after this module was imported).
SCHEMAS: dict[str, dict[str, type]] = {
    "data": {"base": DataConfig},
    "optim": {"base": OptimConfig},
    "trainer": {"base": TrainerConfig},
    "decode": {"base": DecodeConfig},
    "logger": {"base": LoggerConfig},
}


def schemas() -> dict[str, dict[str, type]]:
    """Every group's schemas: :data:`SCHEMAS` plus the model and attention registries'."""
    return {**SCHEMAS, "model": model_schemas(), "attention": attention_schemas()}


def variant_presets() -> dict[str, dict]:
    """The ``variant`` group's generated options: each attention preset as an RNN with that
    attention (``variant=local_m`` == ``model=rnn attention=local attention.mode=monotonic``)
    and the model options the preset needs (``variant=dot`` also sets
    ``model.split_directions=true``). configs/variant/ holds the others (the Transformer)."""
    model_options = preset_model_options()
    return {
        preset: {
            "defaults": [{"override /model": "rnn"}, {"override /attention": options.pop("name")}],
            **({"attention": options} if options else {}),
            **({"model": model_options[preset]} if model_options[preset] else {}),
        }
        for preset, options in preset_options().items()
    }


def register_configs() -> None:
    """Register every schema as ``schema/<group>/<name>`` (the model and attention ones from
    the registries), each registered model family as ``model/<name>`` and each attention as
    ``attention/<name>`` (no YAML files: the class's schema is the option), each attention
    preset as ``variant/<preset>`` and the primary schemas."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="align_baseline_schema", node=AlignBaselineConfig)
    cs.store(name="export_schema", node=ExportConfig)
    for group, options in schemas().items():
        for name, node in options.items():
            cs.store(group=f"schema/{group}", name=name, node=node)
    for group, registered in (("model", model_schemas()), ("attention", attention_schemas())):
        for name, node in registered.items():
            cs.store(group=group, name=name, node=node)
    for preset, node in variant_presets().items():
        cs.store(group="variant", name=preset, node=node, package="_global_")


def run_label(model: str, attention: str, sep: str = "_") -> str:
    """What a run trained, for directory names and logs: ``rnn_additive``, or ``transformer``
    (a family with its own attention, ``own_attention``, ignores the attention group)."""
    model, attention = option_value(model), option_value(attention)
    family = model_family(model)
    return model if family is not None and family.own_attention else f"{model}{sep}{attention}"


NO_JOB_DIR = "<hydra.run.dir, created when the job starts>"


def job_output_dir() -> str:
    """Hydra's ``runtime.output_dir`` of the running job; a placeholder where no job runs
    (``seq2seq-train --cfg job --resolve`` shows the config before any directory exists)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return NO_JOB_DIR
    output_dir = OmegaConf.select(HydraConfig.get(), "runtime.output_dir", throw_on_missing=False)
    return output_dir or NO_JOB_DIR


if not OmegaConf.has_resolver("run_label"):
    OmegaConf.register_new_resolver("run_label", run_label)
if not OmegaConf.has_resolver("job_output_dir"):
    OmegaConf.register_new_resolver("job_output_dir", job_output_dir)


def to_container(cfg: Any) -> dict:
    """Resolved plain-dict copy of a config (enums as their string values)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


@functools.cache
def _schema_values(schema: type) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(schema), resolve=False, enum_to_str=True)


def schema_values(schema: type) -> dict:
    """A schema's default values as a plain dict (enums as strings, interpolations kept): what
    an option means in a config saved before the option existed. A copy: callers may change it."""
    return copy.deepcopy(_schema_values(schema))
