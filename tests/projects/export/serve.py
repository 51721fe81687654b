"""The manual's export spec: the `unsub` package ships its apps in unsub/export/skitai; this
service only mounts the module, tells it where its resources are and adds extensions."""
import skitai

if __name__ == "__main__":
    import unsub
    from extends import apis

    with skitai.preference() as pref:
        pref.mount("/apis", apis)
        pref.config.urlfile = skitai.abspath("resources", "urllist.txt")
        skitai.mount("/latest", unsub, pref)
    with skitai.preference() as pref:
        pref.config.urlfile = skitai.abspath("resources", "urllist.txt")
        skitai.mount("/v1", (unsub, "app_v1:app"), pref)
    with skitai.preference(path="addons") as pref:
        from services import stats

        pref.mount("/stats", stats)
        pref.config.urlfile = skitai.abspath("resources", "urllist.txt")
        skitai.mount("/v2", (unsub, "app_v2"), "app", pref)
    skitai.run(port=5000)
