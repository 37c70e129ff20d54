# Sessions in the database: only each token's SHA-256 is stored, and the data
# is sealed (AES-GCM, with keys derived from SECRET_KEY).
SESSION_ENGINE = "scs_django.backends.db"
SCS = {
    "IDLE_TIMEOUT": 30 * 60,  # signed out after 30 minutes without a request
    "ABSOLUTE_TIMEOUT": 8 * 60 * 60,  # and 8 hours after signing in, at most
}

LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
