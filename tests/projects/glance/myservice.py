# myservice.py

def app (env, start_response):
  start_response ("200 OK", [("Content-Type", "text/plain")])
  return 'Hello World'

if __name__ == "__main__":
  import skitai

  skitai.mount ('/', app)
  skitai.mount ('/', 'statics')
  skitai.run (address = "127.0.0.1", port = 5000)
