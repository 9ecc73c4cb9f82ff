"""The console at ``/console/``: operators' 今日 and failure pages, the regulator's district, the trace explorer."""
