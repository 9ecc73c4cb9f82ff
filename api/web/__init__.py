"""Server-rendered HTML: templating and message catalogues, security headers, static files, error pages.

The console (``api/web/console/``) and the public pages (``api/web/public/``) stand on this package;
:func:`api.web.mount.install_web` wires it into the app.
"""
