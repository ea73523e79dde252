"""The reference site: built by the command, opened and followed in headless Chromium."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from click.testing import CliRunner

from wsdoctor.cli import main
from wsdoctor.knowledge import cause_ids

LINK = re.compile(r'<a[^>]*href="([^"]+)"[^>]*>(.*?)</a>', re.S)


def dump(chromium: list[str], page: Path) -> str:
    out = subprocess.run(
        [*chromium, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=60, check=True
    )
    return out.stdout


def links(dom: str) -> dict[str, str]:
    return {re.sub(r"<[^>]+>", "", text).strip(): href for href, text in LINK.findall(dom)}


def follow(base: Path, href: str) -> Path:
    return (base.parent / href).resolve()


def test_build_site_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["reference", "--out", str(tmp_path / "site")])
    assert result.exit_code == 0, result.output
    site = tmp_path / "site"
    for lang in ("en", "es"):
        assert len(list((site / lang / "compare").glob("*.html"))) == 120
        assert (site / lang / "1010.html").is_file() and (site / lang / "5000-plus.html").is_file()
    text = (site / "en" / "1010.html").read_text()
    assert "http://" not in text.replace("http://127.0.0.1:9/", "") and "<script" not in text
    for lang in ("en", "es"):
        pages = {p.stem for p in (site / lang / "causes").glob("*.html")}
        assert pages == set(cause_ids())
        index = (site / lang / "index.html").read_text()
        assert all(f'href="causes/{cause}.html"' in index for cause in cause_ids())
    assert 'href="causes/tls.expired.html"' in (site / "en" / "1015.html").read_text()
    assert 'href="causes/closed.by_peer.html"' in (site / "en" / "4000-4999.html").read_text()
    assert "causes/" not in (site / "en" / "1004.html").read_text()
    assert "no (permanent)" in (site / "en" / "causes" / "tls.expired.html").read_text()
    assert "sí (transitorio)" in (site / "es" / "causes" / "tcp.refused.html").read_text()


def test_unwritable_out_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    result = CliRunner().invoke(main, ["reference", "--out", str(tmp_path / "file" / "site")])
    assert result.exit_code == 2 and "cannot write to" in result.stderr and "Traceback" not in result.output


def test_site_in_chromium(tmp_path: Path, chromium: list[str]) -> None:
    site = tmp_path / "site"
    assert CliRunner().invoke(main, ["reference", "--out", str(site)]).exit_code == 0

    index = site / "en" / "index.html"
    dom = dump(chromium, index)
    assert "WebSocket close codes" in dom
    page_1010 = follow(index, links(dom)["1010"])
    assert page_1010 == (site / "en" / "1010.html").resolve()

    dom = dump(chromium, page_1010)
    assert "1010 Mandatory Extension" in dom
    for heading in ("Description", "When you'll see it", "How to fix it"):
        assert heading in dom
    found = links(dom)
    comparison = follow(page_1010, found["1010 vs 1015"])
    spanish = follow(page_1010, found["Español"])

    cause_page = follow(page_1010, found["extension.missing"])
    assert cause_page == (site / "en" / "causes" / "extension.missing.html").resolve()

    dom = dump(chromium, cause_page)
    assert "Cause extension.missing" in dom and "Close code" in dom
    assert "The server did not negotiate an extension the client requires." in dom
    for heading in ("Description", "When you'll see it", "How to fix it"):
        assert heading in dom
    cause_links = links(dom)
    assert follow(cause_page, cause_links["1010 Mandatory Extension"]) == page_1010
    spanish_cause = follow(cause_page, cause_links["Español"])
    assert spanish_cause == (site / "es" / "causes" / "extension.missing.html").resolve()
    dom = dump(chromium, spanish_cause)
    assert "Causa extension.missing" in dom and "Código de cierre" in dom and "Cómo solucionarlo" in dom
    assert follow(spanish_cause, links(dom)["1010 Extensión obligatoria"]) == (site / "es" / "1010.html").resolve()

    dom = dump(chromium, comparison)
    assert "1010 vs 1015" in dom and "Key differences" in dom and "When each applies" in dom
    assert "Mandatory Extension" in dom and "TLS Handshake Failure" in dom

    dom = dump(chromium, spanish)
    assert spanish == (site / "es" / "1010.html").resolve()
    assert "Extensión obligatoria" in dom and "Cómo solucionarlo" in dom
    back = follow(spanish, links(dom)["English"])
    assert back == page_1010

    for page in (page_1010, comparison):
        shot = tmp_path / f"{page.stem}.png"
        subprocess.run(
            [*chromium, f"--screenshot={shot}", "--window-size=1200,900", page.as_uri()],
            capture_output=True,
            timeout=60,
            check=True,
        )
        data = shot.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
