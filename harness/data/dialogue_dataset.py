"""Processed dialogue splits (`<role>.jsonl`) as padded batches of context utterances and responses."""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from harness.data.registry import DataError
from harness.data.vocab import BOS_ID, EOS_ID, PAD_ID, Vocab

# ---------------------------------------------------------------------------------------------
# dataset and batches

@dataclass
class DialogueBatch:
    """A padded batch of examples. Utterances are ``<s> w1..wn </s>`` then PAD (0)."""

    context: torch.LongTensor  # [B, J, U]; J = max num_utterances, U = longest context utterance (with <s>, </s>)
    context_lengths: torch.LongTensor  # [B, J]: n + 2, 0 for absent utterances
    num_utterances: torch.LongTensor  # [B]: context utterances (left-aligned, oldest first)
    floors: torch.LongTensor  # [B, J]: 1 if the utterance's speaker is the response's, else 0 (0 if absent)
    response: torch.LongTensor  # [B, L]: <s> w1..wn </s> then PAD
    response_lengths: torch.LongTensor  # [B] = n + 2
    indices: torch.LongTensor  # [B]: example indices in the dataset

    def to(self, device: torch.device | str) -> "DialogueBatch":
        return DialogueBatch(*(t.to(device) for t in (self.context, self.context_lengths, self.num_utterances,
                                                       self.floors, self.response, self.response_lengths,
                                                       self.indices)))

    @property
    def size(self) -> int:
        """Number of examples B."""
        return int(self.response.shape[0])

    def num_predicted_tokens(self) -> int:
        """Response words + </s> over the batch = ``(response_lengths - 1).sum()``."""
        return int((self.response_lengths - 1).sum())


class DialogueDataset:
    """Examples of one processed split (``<split>.jsonl``), encoded once into flat id tensors.

    max_examples: keep only the FIRST n examples of the file (deterministic cap).
    """

    def __init__(self, path: Path, vocab: Vocab, max_examples: int | None = None):
        path = Path(path)
        self.path = path
        self.vocab = vocab
        utts: list[list[int]] = []  # wrapped utterances: all context utterances, then responses interleaved
        ctx_start: list[int] = []
        ctx_count: list[int] = []
        resp_index: list[int] = []
        floors: list[int] = []
        self.references: list[list[str]] = []  # response words (after truncation), for evaluation
        try:
            with open(path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if max_examples is not None and len(resp_index) >= max_examples:
                        break
                    if not line.strip():
                        continue
                    try:
                        ex = json.loads(line)
                        context, speakers, response = ex["context"], ex["speakers"], ex["response"]
                        rs = ex["response_speaker"]
                        if len(context) != len(speakers) or not context:
                            raise ValueError("context and speakers differ in length or are empty")
                    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                        raise DataError(f"{path}:{lineno}: not a dialogue example: {e}") from None
                    ctx_start.append(len(utts))
                    ctx_count.append(len(context))
                    utts.extend([BOS_ID, *vocab.encode(u), EOS_ID] for u in context)
                    floors.extend(int(s == rs) for s in speakers)
                    resp_index.append(len(utts))
                    utts.append([BOS_ID, *vocab.encode(response), EOS_ID])
                    self.references.append(list(response))
        except FileNotFoundError:
            raise DataError(f"{path} does not exist (run the preprocessing step first)") from None
        except UnicodeDecodeError as e:
            raise DataError(f"{path} is not valid UTF-8: {e}") from e
        if not resp_index:
            raise DataError(f"{path}: no examples (empty file)")
        self.utt_lengths = torch.tensor([len(u) for u in utts], dtype=torch.long)
        self.utt_offsets = torch.zeros(len(utts) + 1, dtype=torch.long)
        self.utt_offsets[1:] = torch.cumsum(self.utt_lengths, 0)
        self.ids = torch.tensor([i for u in utts for i in u], dtype=torch.long)
        self.context_start = torch.tensor(ctx_start, dtype=torch.long)
        self.num_utterances = torch.tensor(ctx_count, dtype=torch.long)
        self.response_index = torch.tensor(resp_index, dtype=torch.long)
        self.floors = torch.tensor(floors, dtype=torch.long)  # aligned with context utterances
        # floor k of example i is floors[floor_start[i] + k]
        self.floor_start = torch.zeros(len(ctx_count), dtype=torch.long)
        self.floor_start[1:] = torch.cumsum(self.num_utterances, 0)[:-1]
        self.response_lengths = self.utt_lengths[self.response_index]

    def __len__(self) -> int:
        return int(self.response_index.numel())

    def utterance(self, u: int) -> torch.LongTensor:
        """Ids of stored utterance u: <s> w1..wn </s>."""
        return self.ids[int(self.utt_offsets[u]): int(self.utt_offsets[u + 1])]

    def context_of(self, i: int) -> list[torch.LongTensor]:
        start = int(self.context_start[i])
        return [self.utterance(start + k) for k in range(int(self.num_utterances[i]))]

    def response_of(self, i: int) -> torch.LongTensor:
        return self.utterance(int(self.response_index[i]))

    @property
    def num_tokens(self) -> int:
        """Response words + </s> over the dataset (the NLL/PPL denominator)."""
        return int((self.response_lengths - 1).sum())

    def collate(self, indices: list[int] | torch.Tensor) -> DialogueBatch:
        """Pad the given examples into a `DialogueBatch`."""
        idx = torch.as_tensor(indices, dtype=torch.long).reshape(-1)
        if idx.numel() == 0:
            raise ValueError("cannot collate an empty list of examples")
        b = idx.numel()
        num = self.num_utterances[idx]
        j = int(num.max())
        ctx_lengths = torch.zeros(b, j, dtype=torch.long)
        floors = torch.zeros(b, j, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            n, start, fstart = int(self.num_utterances[i]), int(self.context_start[i]), int(self.floor_start[i])
            ctx_lengths[row, :n] = self.utt_lengths[start: start + n]
            floors[row, :n] = self.floors[fstart: fstart + n]
        context = torch.full((b, j, int(ctx_lengths.max())), PAD_ID, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            for k, utt in enumerate(self.context_of(i)):
                context[row, k, : utt.numel()] = utt
        resp_lengths = self.response_lengths[idx]
        response = torch.full((b, int(resp_lengths.max())), PAD_ID, dtype=torch.long)
        for row, i in enumerate(idx.tolist()):
            seq = self.response_of(i)
            response[row, : seq.numel()] = seq
        return DialogueBatch(context, ctx_lengths, num.clone(), floors, response, resp_lengths.clone(), idx.clone())


def dialogue_batches(dataset: DialogueDataset, batch_size: int, shuffle: bool, generator: torch.Generator | None,
                     bucket: bool = True) -> Iterator[DialogueBatch]:
    """Yield batches covering every example once (as `harness.data.lm_dataset.batches`).

    bucket=True: examples sorted by (number of context utterances, response length) and chunked, so a batch
        needs little padding. With shuffle=True, examples are first permuted with `generator`, then stably
        sorted, and the batch order is permuted too.
    bucket=False: file order (shuffle=False) or a random permutation (shuffle=True).
    Identical `generator` state -> identical batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(dataset)
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    if bucket:
        key = dataset.num_utterances * (int(dataset.response_lengths.max()) + 1) + dataset.response_lengths
        order = order[torch.sort(key[order], stable=True).indices]
    chunks = list(torch.split(order, batch_size))
    if shuffle and bucket:
        chunks = [chunks[i] for i in torch.randperm(len(chunks), generator=generator).tolist()]
    for chunk in chunks:
        yield dataset.collate(chunk)
