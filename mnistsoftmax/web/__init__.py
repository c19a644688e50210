"""`mnistsoftmax serve`: a local page to draw a digit and watch softmax, log-likelihood and cross
entropy at work (the optional `serve` extra: Starlette and uvicorn).

    catalog.py   the checkpoints a page may use, by name, loaded once
    app.py       the Starlette app: the table of routes, the guards of a local server, errors as JSON
    http.py      what the routes share: errors, request bodies read within their limits
    draw_routes.py  the draw page's routes: checkpoints, predict (explain.explain's numbers)
    run_routes.py   the training view's routes: options, runs, events, start/stop/resume
    trainer.py   the worker process of a page-started run; watch.py the runs list and events
    server.py    uvicorn on a bound socket; says where it serves once it accepts connections
    static/      the page: plain HTML, CSS and ES modules, one per view, no build step
"""

MISSING_EXTRA = "serve needs Starlette and uvicorn: pip install 'mnistsoftmax[serve]'"
