"""Flask below a mount point: `flaskapp.py` of this folder at /flaskapp."""
import skitai

if __name__ == "__main__":
    skitai.mount("/flaskapp", "flaskapp:app")
    skitai.run(port=5000)
