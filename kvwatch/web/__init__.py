"""`kvwatch web`: a read-only web page over the store (views.py: the data; app.py: HTML, JSON and Atom
routes; feeds.py: the Atom feeds). No JavaScript anywhere: every page is server-rendered."""
