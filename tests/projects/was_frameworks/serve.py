"""`from skitai import was` inside frameworks: a Flask app at /flask and a Django app at /django,
both using corequests, shared states and HTTPError answers."""
import skitai

if __name__ == "__main__":
    skitai.register_states("visits")
    skitai.mount("/flask", "flaskwas:app")
    skitai.mount("/django", "djangowas:application")
    skitai.run(port=5000)
