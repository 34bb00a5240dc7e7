"""The three source formatters, with the reference articles' edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.formats.exam import normalize_options, read_exam_file, read_exam_folder, split_options
from training.formats.terms import read_term_file, read_term_folder
from training.formats.transcripts import read_transcript_file, read_transcript_folder
from training.prompts import TERM_TEMPLATES, TermTemplates, description_answer
from training.records import SkipLog

# ---------------------------------------------------------------- exam


def test_glued_option_numbers_are_spaced() -> None:
    text = "다음 중 옳은 것은?1. 가는 맞다.2. 나는 틀리다.3. 다.4. 라"
    assert normalize_options(text) == "다음 중 옳은 것은? 1. 가는 맞다. 2. 나는 틀리다. 3. 다. 4. 라"


def test_decimals_and_codes_stay_intact() -> None:
    text = "Heading 8471.30. covers laptops; the rate is 2.5.1. Yes 2. No"
    normalized = normalize_options(text)
    assert "8471.30." in normalized
    assert "2.5." in normalized


def test_split_options_needs_consecutive_numbers() -> None:
    stem, options = split_options("Pick one: 1. FOB 2. CIF 3. DDP")
    assert stem == "Pick one:"
    assert options == ["FOB", "CIF", "DDP"]
    assert split_options("Chapter 84 covers machines. 3. Only one")[1] == []


def test_korean_exam_json_with_fixed_text(tmp_path: Path) -> None:
    fixed = (
        "질문: 대외무역법에 대한 설명으로 거리가 먼 것은?1. 가.2. 나.3. 다.4. 라. 정답: 다. "
        "질문: HS 코드의 국제 공통 자릿수는?1. 4자리 2. 6자리 3. 8자리 4. 10자리 정답: 2"
    )
    path = tmp_path / "exam_1.json"
    path.write_text(json.dumps({"fixed_text": fixed}, ensure_ascii=False), encoding="utf-8")
    skips = SkipLog()
    pairs = read_exam_file(path, skips)
    assert [p.question for p in pairs] == [
        "대외무역법에 대한 설명으로 거리가 먼 것은? 1. 가. 2. 나. 3. 다. 4. 라.",
        "HS 코드의 국제 공통 자릿수는? 1. 4자리 2. 6자리 3. 8자리 4. 10자리",
    ]
    assert [p.answer for p in pairs] == ["다.", "6자리"]  # a bare option number becomes the option's text
    assert skips.items == []
    assert {p.source for p in pairs} == {"exam"}


def test_english_exam_text_and_problem_blocks(tmp_path: Path) -> None:
    path = tmp_path / "exam.txt"
    path.write_text(
        "Title line that is not a question\n"
        "Question: Which rule has the least seller obligation?\n1. EXW\n2. DDP\nAnswer: EXW\n\n"
        "Question: A block whose answer marker is missing\n1. a\n2. b\n\n"
        "Question: Option out of range?\n1. a\n2. b\nAnswer: 7\n\n"
        "Question: Empty answer?\nAnswer:   \n\n"
        "Question: What does FOB stand for?\nAnswer: Free On Board\n",
        encoding="utf-8",
    )
    skips = SkipLog()
    pairs = read_exam_file(path, skips)
    assert [(p.question, p.answer) for p in pairs] == [
        ("Which rule has the least seller obligation? 1. EXW 2. DDP", "EXW"),
        ("What does FOB stand for?", "Free On Board"),
    ]
    reasons = [(s.reason, s.location) for s in skips.items]
    assert reasons == [
        ("text_before_first_question", "line 1"),
        ("no_answer_marker", "line 7"),
        ("answer_option_not_found", "line 11"),
        ("empty_answer", "line 16"),
    ]
    assert all(s.file == str(path) for s in skips.items)


def test_broken_exam_json_is_counted_and_the_folder_goes_on(tmp_path: Path) -> None:
    (tmp_path / "a_broken.json").write_text('{"fixed_text": "질문: x 정답: y"', encoding="utf-8")
    (tmp_path / "b_wrong.json").write_text('{"content": "질문: x 정답: y"}', encoding="utf-8")
    (tmp_path / "c_good.txt").write_text("질문: 무엇인가? 정답: 이것", encoding="utf-8")
    (tmp_path / "d_notes.md").write_text("ignored kind", encoding="utf-8")
    skips = SkipLog()
    pairs = read_exam_folder(tmp_path, skips)
    assert [(p.question, p.answer) for p in pairs] == [("무엇인가?", "이것")]
    assert skips.by_reason() == {"broken_json": 1, "missing_field": 1, "unsupported_file": 1}


# ---------------------------------------------------------------- terms


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_korean_term_templates_match_the_reference_wording(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "terms.json",
        [
            {
                "term": "APEC 경제위원회(Economic Committee (EC))",
                "description": "분석적 연구작업을 하는 APEC 기구",
            },
            {"kor_term": "체선료", "eng_term": "Demurrage", "description": "무료 장치기간을 넘긴 요금"},
        ],
    )
    pairs = read_term_file(path, TERM_TEMPLATES["ko"], SkipLog())
    assert [(p.question, p.answer) for p in pairs] == [
        (
            "설명: '분석적 연구작업을 하는 APEC 기구' 이 설명에 해당하는 무역 용어는 무엇인가요?",
            "APEC 경제위원회(Economic Committee (EC))",
        ),
        (
            "'APEC 경제위원회(Economic Committee (EC))' 이라는 무역 용어는 어떤 의미인가요?",
            "분석적 연구작업을 하는 APEC 기구",
        ),
        ("설명: '무료 장치기간을 넘긴 요금' 이 설명에 해당하는 무역 용어는 무엇인가요?", "체선료, Demurrage"),
        ("'체선료(Demurrage)' 이라는 무역 용어는 어떤 의미인가요?", "무료 장치기간을 넘긴 요금"),
    ]
    assert pairs[0].group == pairs[1].group != pairs[2].group == pairs[3].group


def test_nested_lists_missing_eng_term_and_bad_entries(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "terms_data_2.json",
        [
            [
                {"kor_term": "관세환급", "description": "수출 후 관세를 돌려받는 제도"},
                {"kor_term": "혼재", "eng_term": None, "description": "소량 화물을 모으는 작업"},
            ],
            [[{"kor_term": "복합운송", "eng_term": "Multimodal Transport", "description": "두 운송수단"}]],
            [
                {"kor_term": "설명없음"},
                {"description": "용어 없음"},
                "not an object",
                {"kor_term": "숫자", "eng_term": 3, "description": "잘못된 형식"},
                {"kor_term": "  ", "description": "빈 용어"},
            ],
        ],
    )
    skips = SkipLog()
    pairs = read_term_file(path, TERM_TEMPLATES["ko"], skips)
    answers = [p.answer for p in pairs if p.question.startswith("설명:")]
    assert answers == ["관세환급", "혼재", "복합운송, Multimodal Transport"]
    assert len(pairs) == 6
    assert [(s.location, s.reason) for s in skips.items] == [
        ("item [2][0]", "missing_field"),
        ("item [2][1]", "missing_field"),
        ("item [2][2]", "not_an_object"),
        ("item [2][3]", "wrong_type"),
        ("item [2][4]", "missing_field"),
    ]


def test_english_templates_and_jsonl_with_a_broken_line(tmp_path: Path) -> None:
    path = tmp_path / "glossary.jsonl"
    path.write_text(
        '{"term": "Free On Board", "eng_term": "FOB", "description": "Delivery on board the vessel."}\n'
        "{broken\n"
        "\n"
        '[{"term": "Laytime", "description": "Time allowed for loading."}]\n',
        encoding="utf-8",
    )
    skips = SkipLog()
    pairs = read_term_file(path, TERM_TEMPLATES["en"], skips)
    assert [(p.question, p.answer) for p in pairs] == [
        ("Which trade term is described as follows: Delivery on board the vessel.", "Free On Board (FOB)"),
        (
            "What does the trade term 'Free On Board (FOB)' mean?",
            "Free On Board (FOB) is delivery on board the vessel.",
        ),
        ("Which trade term is described as follows: Time allowed for loading.", "Laytime"),
        ("What does the trade term 'Laytime' mean?", "Laytime is time allowed for loading."),
    ]
    assert [(s.location, s.reason) for s in skips.items] == [("line 2", "broken_json")]


def test_custom_term_templates_from_a_file(tmp_path: Path) -> None:
    templates = {
        "description_to_term": "Name the term: {description}",
        "term_to_description": "Define {term}.",
        "term_label_with_eng": "{term}/{eng_term}",
        "answer_with_eng": "{term}/{eng_term}",
    }
    loaded = TermTemplates.from_json(_write(tmp_path / "t.json", templates))
    folder = tmp_path / "terms"
    folder.mkdir()
    _write(
        folder / "a.json",
        [{"term": "Cost and Freight", "eng_term": "CFR", "description": "Seller pays freight."}],
    )
    pairs = read_term_folder(folder, loaded, SkipLog())
    assert [(p.question, p.answer) for p in pairs] == [
        ("Name the term: Seller pays freight.", "Cost and Freight/CFR"),
        ("Define Cost and Freight/CFR.", "Seller pays freight."),
    ]
    with pytest.raises(ValueError, match="must contain"):
        TermTemplates.from_json(_write(tmp_path / "bad.json", templates | {"term_to_description": "Define."}))
    sentence = templates | {"description_answer": "{term} means {description}"}
    pairs = read_term_folder(
        folder, TermTemplates.from_json(_write(tmp_path / "s.json", sentence)), SkipLog()
    )
    assert pairs[1].answer == "Cost and Freight/CFR means seller pays freight."
    with pytest.raises(ValueError, match="description_answer"):
        TermTemplates.from_json(_write(tmp_path / "extra.json", templates | {"unknown": "{term}"}))


def test_description_answer_lower_cases_only_a_common_first_word() -> None:
    english = TERM_TEMPLATES["en"]
    assert description_answer(english, "HS", "The World Customs Organization's code.") == (
        "HS is the World Customs Organization's code."
    )
    assert description_answer(english, "X", "World Customs Organization rules.") == (
        "X is World Customs Organization rules."
    )
    assert description_answer(TERM_TEMPLATES["ko"], "관세", "The text.") == "The text."  # answer is the text


# ---------------------------------------------------------------- transcripts


def test_transcript_lines_answers_as_lists_and_broken_lines(tmp_path: Path) -> None:
    ok = {"qa_pairs": [{"question": "수입 신고는 언제?", "answer": "입항 후입니다."}]}
    as_list = {"qa_pairs": [{"question": "필요 서류는?", "answer": ["송품장입니다.", "포장명세서"]}]}
    bad_items = {
        "qa_pairs": [
            {"question": "빈 목록?", "answer": []},
            {"answer": "질문 없음"},
            {"question": "숫자 답?", "answer": 3},
        ]
    }
    lines = [
        json.dumps({"context": "c1", "json_output": json.dumps(ok, ensure_ascii=False)}, ensure_ascii=False),
        '{"context": "c2", "json_output": ',  # broken line
        json.dumps({"context": "c3", "json_output": as_list}, ensure_ascii=False),  # already parsed object
        json.dumps({"context": "c4", "json_output": "{not json"}),
        json.dumps({"context": "c5"}),
        json.dumps({"context": "c6", "json_output": json.dumps({"pairs": []})}),
        json.dumps(
            {"context": "c7", "json_output": json.dumps(bad_items, ensure_ascii=False)}, ensure_ascii=False
        ),
        "",
        json.dumps({"context": "c8", "json_output": json.dumps(ok, ensure_ascii=False)}, ensure_ascii=False),
    ]
    path = tmp_path / "lecture.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    skips = SkipLog()
    pairs = read_transcript_file(path, skips)
    assert [(p.question, p.answer) for p in pairs] == [
        ("수입 신고는 언제?", "입항 후입니다."),
        ("필요 서류는?", "송품장입니다."),
        ("수입 신고는 언제?", "입항 후입니다."),
    ]
    assert [(s.location, s.reason) for s in skips.items] == [
        ("line 2", "broken_json"),
        ("line 4", "broken_json_output"),
        ("line 5", "missing_field"),
        ("line 6", "missing_field"),
        ("line 7 qa_pairs[0]", "empty_answer"),
        ("line 7 qa_pairs[1]", "missing_field"),
        ("line 7 qa_pairs[2]", "wrong_type"),
    ]


def test_transcript_folder_prefers_success_subfolder(tmp_path: Path) -> None:
    record = {"context": "c", "json_output": json.dumps({"qa_pairs": [{"question": "Q?", "answer": "A."}]})}
    (tmp_path / "success").mkdir()
    (tmp_path / "failed").mkdir()
    (tmp_path / "success" / "a.jsonl").write_text(json.dumps(record) + "\n", encoding="utf-8")
    (tmp_path / "failed" / "a.jsonl").write_text(json.dumps({"context": "x", "error": "e"}) + "\n")
    pairs = read_transcript_folder(tmp_path, SkipLog())
    assert [(p.question, p.answer) for p in pairs] == [("Q?", "A.")]
