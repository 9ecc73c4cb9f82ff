"""Gone: the API's queries live in ``storage/`` by table family. Only a re-export for ``bench/flagging.py`` is left."""
