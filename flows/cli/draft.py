"""`dunghan plan draft DECISION -o plan.yaml`: a plan file drafted from its decision's text."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from deadlines.agencies import load_registry
from deadlines.agency_match import load_other_names
from deadlines.datafile import DataFileError
from deadlines.decision import DecisionError, read_decision
from deadlines.draft import Draft, draft_plan, render_draft
from flows.cli.calendar import fail


def draft(
    decision: Annotated[
        Path, typer.Argument(help="Tệp quyết định ban hành kế hoạch: .txt (UTF-8) hoặc .docx.")
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="Tệp kế hoạch nháp (YAML) sẽ viết. Không có: in ra màn hình."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Ghi đè tệp --output nếu đã có.")] = False,
    registry_path: Annotated[
        Path | None,
        typer.Option("--registry", help="Tệp danh bạ cơ quan. Mặc định: plans/agencies.yaml."),
    ] = None,
    names_path: Annotated[
        Path | None,
        typer.Option(
            "--names",
            help="Tệp tên khác của cơ quan và chữ viết tắt. Mặc định: plans/agency-names.yaml.",
        ),
    ] = None,
) -> None:
    """Soạn bản nháp tệp kế hoạch từ quyết định: từng hàng phụ lục, cơ quan khớp danh bạ,
    thời hạn đã đọc; liệt kê mọi chỗ chưa chắc để sửa."""
    if output is not None and output.exists() and not force:
        raise fail(f"{output}: tệp đã có; dùng --force để ghi đè hoặc chọn tên khác.", code=1)
    try:
        registry = load_registry(registry_path)
        names = load_other_names(names_path, registry)
    except DataFileError as exc:
        raise fail(f"Tệp danh bạ hoặc tên cơ quan không hợp lệ:\n{exc}", code=1) from None
    try:
        result = draft_plan(read_decision(decision), registry, names, source_file=str(decision))
    except DecisionError as exc:
        message = str(exc)
        if not message.startswith(str(decision)):
            message = f"{decision}: {message}"
        raise fail(f"Không soạn được bản nháp: {message}", code=1) from None
    text = render_draft(result)
    if output is None:
        typer.echo(text, nl=False)
        _summary(result, None, err=True)
        return
    _write_atomically(output, text)
    _summary(result, output, err=False)


def _write_atomically(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temporary file in the same folder, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _summary(result: Draft, output: Path | None, *, err: bool) -> None:
    meta = result.meta
    appendix = sum(o.part == "appendix" for o in result.obligations)
    body = len(result.obligations) - appendix
    where = f" vào {output}" if output else ""
    say = lambda line: typer.echo(line, err=err)  # noqa: E731
    say(
        f"Bản nháp kế hoạch theo Quyết định {meta['decision'] or '?'} "
        f"({meta['province'] or '?'}, năm {meta['year'] or '?'}){where}: "
        f"{len(result.obligations)} nhiệm vụ ({appendix} ở phụ lục, {body} ở thân kế hoạch)."
    )
    if result.problems:
        say(f"{len(result.problems)} chỗ cần sửa (mục 'draft_problems' của tệp):")
        width = max(len(p.row) for p in result.problems)
        for p in result.problems:
            say(f"  {p.row.ljust(width)}  {p.field}: {p.problem}")
    else:
        say("Không có chỗ nào chưa chắc.")
    for note in result.notes:
        say(f"Ghi chú: {note}")
    if output is not None:
        say(f"Sau khi sửa, kiểm tra: dunghan plan check {output}")
