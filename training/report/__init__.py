"""A report to send: chosen runs and images in one HTML file that opens offline in any browser
(``builder``: what it holds and where each number comes from; ``html``: the page, its escaping and
what it embeds). ``python -m training report RUN [RUN ...]`` writes one; the dashboard's explorer
and comparison pages offer it as a download."""

from training.report.builder import build_report, write_report

__all__ = ["build_report", "write_report"]
