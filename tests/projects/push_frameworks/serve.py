"""Server push from frameworks: the spec's Flask example at /flask and the same in Django at
/django, pushing images served from the static directory mounted at /."""
import skitai

if __name__ == "__main__":
    skitai.mount("/", "static")
    skitai.mount("/flask", "flaskpush:app")
    skitai.mount("/django", "djangopush:application")
    skitai.run(port=5000)
