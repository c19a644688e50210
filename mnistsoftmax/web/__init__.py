"""`mnistsoftmax serve`: a local page to draw a digit and watch softmax, log-likelihood and cross
entropy at work (the optional `serve` extra: Starlette and uvicorn).

    catalog.py   the checkpoints a page may use, by name, loaded once
    app.py       the Starlette app: JSON routes as thin as cli.py, the guards of a local server
    server.py    uvicorn on a bound socket; says where it serves once it accepts connections
    static/      the page: plain HTML, CSS and ES modules, one per view, no build step
"""

MISSING_EXTRA = "serve needs Starlette and uvicorn: pip install 'mnistsoftmax[serve]'"
