"""The benchmark report: collect run directories -> tables, plots -> markdown, HTML, CSV, JSON.

One job per file: ``collect`` (read the runs), ``tables`` / ``speed`` / ``protocol``
(what to show), ``plots`` (figures), ``document`` + ``render_md`` / ``render_html``
(how to show it), ``build`` (write ``reports/<profile>/``).
"""

from benchmarks.report.build import build_report

__all__ = ["build_report"]
