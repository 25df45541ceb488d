"""``bench leaderboard build`` and ``bench leaderboard serve``."""
from __future__ import annotations

import functools
import http.server
from pathlib import Path

import click

from brainbench.core.config import Config
from brainbench.core.commands.common import BenchGroup
from brainbench.core.errors import BrainbenchError


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def make_server(directory: str | Path, port: int = 8000) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``directory`` on 127.0.0.1 (``port`` 0: any free port); call ``serve_forever``."""
    directory = Path(directory)
    if not (directory / "index.html").is_file():
        raise BrainbenchError(f"{directory} holds no index.html; run `bench leaderboard build --out {directory}` first")
    handler = functools.partial(_QuietHandler, directory=str(directory))
    try:
        return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    except OSError as exc:
        raise BrainbenchError(f"cannot serve on 127.0.0.1:{port} ({exc.strerror}); choose another --port") from None


def _build(db: str | None, out: str, title: str, sources: tuple[str, ...] = ()):
    """Build from ``sources`` (and ``--db`` when given too), or from the configured database alone."""
    from .build import build_site

    if sources:
        return build_site([*sources, *([db] if db else [])], out, title=title)
    config = Config(db=db)
    return build_site(config.db_path, out, title=title)


_FROM_HELP = ("A results folder, result file or results database to build from (repeatable, any mix; "
              "default: the results database).")


@click.group(cls=BenchGroup)
def leaderboard():
    """Build the static leaderboard website from the results database, or preview it.

    \b
    Example:
        bench leaderboard build --out site/ && bench leaderboard serve --out site/
    """


@leaderboard.command()
@click.option("--out", "-o", default="site", show_default=True, type=click.Path(file_okay=False),
              help="Folder to write the site into (new, empty, or an earlier build).")
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
@click.option("--title", default="brainbench leaderboard", show_default=True, help="Site title.")
@click.option("--from", "sources", multiple=True, type=click.Path(), metavar="PATH", help=_FROM_HELP)
def build(out, db, title, sources):
    """Render the site: the ranked table, a page per model and per benchmark, plots and downloads.

    The result is plain files that work from file:// or any static host. With --from it merges
    result folders (other labs' files), result files and databases; two sources that disagree on
    a score stop the build.

    \b
    Examples:
        bench leaderboard build --out site/ && xdg-open site/index.html
        bench leaderboard build --from results/ --from my-results.db --out site/
    """
    report = _build(db, out, title, sources)
    click.echo(f"built {len(report.pages)} pages and {len(report.plots)} plots from {report.rows} rows "
               f"in {report.out}/; open {report.out / 'index.html'}")


@leaderboard.command()
@click.option("--out", "-o", default="site", show_default=True, type=click.Path(file_okay=False),
              help="The site folder.")
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535),
              help="Port on 127.0.0.1 (0: any free port).")
@click.option("--build/--no-build", "rebuild", default=True, show_default=True,
              help="Rebuild the site from the database first.")
@click.option("--title", default="brainbench leaderboard", show_default=True, help="Site title (with --build).")
@click.option("--from", "sources", multiple=True, type=click.Path(), metavar="PATH", help=_FROM_HELP)
def serve(out, db, port, rebuild, title, sources):
    """Preview the site on http://127.0.0.1:PORT/ (Ctrl-C stops).

    \b
    Example:
        bench leaderboard serve --port 8000
    """
    if rebuild:
        report = _build(db, out, title, sources)
        click.echo(f"built {len(report.pages)} pages from {report.rows} rows in {report.out}/")
    server = make_server(out, port)
    click.echo(f"serving {out} at http://127.0.0.1:{server.server_port}/ (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@click.command()
@click.option("--model", "-m", "models", multiple=True, required=True, metavar="NAME[@CHECKPOINT]",
              help="Model to report on (repeatable); NAME alone takes every stored checkpoint.")
@click.option("--out", "-o", default="report", show_default=True, type=click.Path(file_okay=False),
              help="Folder for index.html and the figures (PNG and SVG).")
@click.option("--db", default=None, help="Results database (default: <home>/results.db).")
def report(models, out, db):
    """Draw the paper's figures for what is stored, as PNG and SVG, and one HTML page.

    Encoding r per region on the cortex, best layer vs distance from V1, MEG layer × time with
    T_max, scores along training with half-times, per-region half-time on the cortex and against
    distance and cortical maps, and a table of this run's numbers beside the paper's. What cannot
    be drawn for lack of rows is listed with the command that would compute it.

    \b
    Example:
        bench report -m dinov3-small@init --out report/
        bench report -m tiny-dino -m dinov3-small@init --out report/
    """
    from .report import write_report

    written = write_report(models, out, Config(db=db).db_path)
    for model in written.models:
        drawn = sorted({f.number for f in model.figures})
        click.echo(f"{model.model}: figures {', '.join(map(str, drawn)) or 'none'} drawn"
                   + (f"; not drawn: {', '.join(str(m.number) for m in model.missing)} (see the page)"
                      if model.missing else ""))
    click.echo(f"wrote {len(written.files)} figure files and {written.out / 'index.html'}")


if __name__ == "__main__":  # python -m brainbench.leaderboard.commands
    leaderboard()
