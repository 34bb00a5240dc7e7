"""Prompt and question templates: the Korean ones of the reference recipe, and English ones."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, fields
from pathlib import Path

LANGUAGES = ("ko", "en")

INSTRUCTION_PROMPTS = {
    "ko": "다음 질문에 대답해주세요: {question}",
    "en": "Answer the following question: {question}",
}


@dataclass(frozen=True)
class TermTemplates:
    """How a glossary entry becomes two questions.

    ``description_to_term`` uses ``{description}``; ``term_to_description`` uses ``{term}``, which is the term
    label (``term_label_with_eng`` when an English term is given). ``answer_with_eng`` is the answer of the
    description->term question when an English term is given. ``description_answer`` (optional, default
    ``{description}``) is the answer of the term->description question, with ``{term}`` (the label) and
    ``{description}``; text before ``{description}`` (``{term} is {description}``) makes a full sentence, and a
    leading article of the description is then lower-cased ("Demurrage is a charge ...").
    """

    description_to_term: str
    term_to_description: str
    term_label_with_eng: str
    answer_with_eng: str
    description_answer: str = "{description}"

    @classmethod
    def from_json(cls, path: Path) -> TermTemplates:
        """Read templates from a JSON object with the four field names."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read term templates: {exc}") from exc
        names = [f.name for f in fields(cls)]
        required = [name for name in names if name != "description_answer"]
        if not isinstance(data, dict) or not set(required) <= set(data) or not set(data) <= set(names):
            raise ValueError(
                f"{path}: term templates must be a JSON object with the keys {required} "
                "(and optionally description_answer)"
            )
        if not all(isinstance(value, str) for value in data.values()):
            raise ValueError(f"{path}: every term template must be a string")
        templates = cls(**data)
        templates.check(str(path))
        return templates

    def check(self, where: str) -> None:
        """Fail early on a template that lacks its placeholder."""
        required = {
            "description_to_term": "{description}",
            "term_to_description": "{term}",
            "term_label_with_eng": "{eng_term}",
            "answer_with_eng": "{eng_term}",
            "description_answer": "{description}",
        }
        for name, placeholder in required.items():
            if placeholder not in getattr(self, name):
                raise ValueError(f"{where}: term template '{name}' must contain {placeholder}")


TERM_TEMPLATES = {
    "ko": TermTemplates(
        description_to_term="설명: '{description}' 이 설명에 해당하는 무역 용어는 무엇인가요?",
        term_to_description="'{term}' 이라는 무역 용어는 어떤 의미인가요?",
        term_label_with_eng="{term}({eng_term})",
        answer_with_eng="{term}, {eng_term}",
    ),
    "en": TermTemplates(
        description_to_term="Which trade term is described as follows: {description}",
        term_to_description="What does the trade term '{term}' mean?",
        term_label_with_eng="{term} ({eng_term})",
        answer_with_eng="{term} ({eng_term})",
        description_answer="{term} is {description}",
    ),
}

# A leading article, or a capitalised common word followed by a lower-case word ("Software that ..."); a proper
# name ("World Customs Organization") keeps its capital.
_LOWER_CASED_START = re.compile(r"^(?:A|An|The)\b|^[A-Z][a-z]+(?= [a-z])")


def description_answer(templates: TermTemplates, term: str, description: str) -> str:
    """The answer of a term->description question (see :class:`TermTemplates`)."""
    if not templates.description_answer.startswith("{description}"):
        description = _LOWER_CASED_START.sub(lambda m: m.group(0).lower(), description)
    return fill(templates.description_answer, term=term, description=description)


EXTRACTION_PROMPTS = {
    "ko": (
        "summary: {summary} Instruction: 다음 summary를 기반으로 질문과 해당 답변을 추출하세요. "
        "출력 형식은 JSON으로, 각 질문과 답변을 객체로 묶어 'qa_pairs'라는 배열 안에 넣어야 합니다. "
        "'questions' key에는 요약에서 도출된 질문 목록이 포함되어야 하며, 'answers' key에는 각 질문에 대한 "
        "해당 답변 목록이 포함되어야 합니다: 출력 예시: "
        '{"qa_pairs": [{"question": "Question1", "answer": "Answer1"}, '
        '{"question": "Question2", "answer": "Answer2"}]} Output:'
    ),
    "en": (
        "Lecture excerpt: {summary}\n\n"
        "Write question-and-answer pairs that a trade and logistics student could answer from this excerpt "
        "alone. Each answer is one or two complete sentences. Reply with JSON only, in the form "
        '{"qa_pairs": [{"question": "...", "answer": "..."}]}.'
    ),
}


def fill(template: str, **values: str) -> str:
    """Fill ``{name}`` placeholders by plain replacement (other braces in the text stay as they are)."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", value)
    return template
