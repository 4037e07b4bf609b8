"""Name masking (flows/lib/name_mask.py): what it replaces, and that a names-only reference,
which recognises characters on the paper's snippet split before masking, falls to the majority
rate after it."""
import numpy as np

from flows.lib.name_mask import MASK_TOKEN, NameMasker
from flows.lib.unseen_task import UnseenSettings, load_unseen_task
from flows.lib.ziems import read_cmu_records


def test_masks_name_words_possessives_and_capitals_but_not_titles_or_words():
    masker = NameMasker(["Professor Philip Brainard", "Marty McFly", "Man with No Name"])
    assert masker.mask("Professor Philip Brainard, where's Marty's car?") == f"Professor {MASK_TOKEN}, where's {MASK_TOKEN} car?"
    assert masker.mask("MCFLY! Marty McFly, a man with no name.") == f"{MASK_TOKEN}! {MASK_TOKEN}, a man with no name."
    assert masker.mask("Philip, Brainard") == MASK_TOKEN  # a run of names is one placeholder
    assert masker.name_tokens("Hi Marty, hi philip") == ["Marty"]


def test_speaker_cues_mask_any_capitalised_spelling_but_not_lower_case_words():
    masker = NameMasker(["Indiana Jones"], cues=["INDY", "MARION", "MCFLY", "GUARD #2", "DR LECTER"])
    assert masker.mask("Indy's hat, INDY! Marion met McFly and Dr. Lecter; the guard waved at Jones.") == (
        f"{MASK_TOKEN} hat, {MASK_TOKEN}! {MASK_TOKEN} met {MASK_TOKEN} and Dr. {MASK_TOKEN}; the guard waved at {MASK_TOKEN}.")
    assert masker.mask("indy marion, Guard!") == f"indy marion, {MASK_TOKEN}!"  # a cue word, capitalised


def _names_only_accuracy(texts, labels, train, test, masker) -> float:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    names = [" ".join(masker.name_tokens(t)) or "none" for t in texts]  # the tokens that are names, only
    vectorizer = TfidfVectorizer(lowercase=False, token_pattern=r"\S+").fit([names[i] for i in train])
    model = LogisticRegression(C=10.0, max_iter=2000)
    model.fit(vectorizer.transform([names[i] for i in train]), labels[train])
    return float((model.predict(vectorizer.transform([names[i] for i in test])) == labels[test]).mean())


def test_names_only_reference_falls_to_chance_after_masking(shared_data):
    """The paper's protocol, snippets of the same characters in train and test: before masking the
    names in the quotes give the trope away; after masking, the same reference scores what the
    majority trope scores."""
    task = load_unseen_task(shared_data, UnseenSettings(window=4))
    raw = [[ "\n".join(c.lines[i : i + 4]) for i in range(0, len(c.lines), 4)] for c in task.characters]
    labels = np.array([task.trope_ids.index(c.tropes[0]) for c, snippets in zip(task.characters, raw) for _ in snippets])
    rng = np.random.default_rng(0)
    is_test = rng.random(len(labels)) < 0.2
    train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    majority = float((labels[test] == np.bincount(labels[train]).argmax()).mean())
    masker = NameMasker(r.character for r in read_cmu_records(shared_data / "cmu_tvtropes" / "tvtropes.clusters.txt"))
    before = _names_only_accuracy([t for s in raw for t in s], labels, train, test, masker)
    after = _names_only_accuracy([t for s in task.snippets for t in s], labels, train, test, masker)
    assert before > 2.5 * majority
    assert after <= majority + 0.01
