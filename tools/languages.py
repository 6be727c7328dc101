"""Language names and ISO 639-1 codes the translator accepts."""

from __future__ import annotations

LANGUAGES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "cy": "Welsh", "da": "Danish", "de": "German", "el": "Greek",
    "en": "English", "eo": "Esperanto", "es": "Spanish", "et": "Estonian", "eu": "Basque",
    "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish", "gl": "Galician",
    "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "hu": "Hungarian", "hy": "Armenian",
    "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese",
    "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "la": "Latin", "lt": "Lithuanian",
    "lv": "Latvian", "mk": "Macedonian", "ms": "Malay", "mt": "Maltese", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian",
    "ru": "Russian", "sk": "Slovak", "sl": "Slovenian", "sq": "Albanian", "sr": "Serbian",
    "sv": "Swedish", "sw": "Swahili", "ta": "Tamil", "th": "Thai", "tl": "Tagalog",
    "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu", "vi": "Vietnamese", "zh": "Chinese",
}
_BY_NAME = {name.lower(): name for name in LANGUAGES.values()}
_ALIASES = {"farsi": "Persian", "mandarin": "Chinese", "brazilian portuguese": "Portuguese"}
# Languages' own names: a small model asked for French often writes "français".
_ENDONYMS = {
    "français": "French", "francais": "French", "español": "Spanish", "espanol": "Spanish",
    "castellano": "Spanish", "italiano": "Italian", "português": "Portuguese",
    "portugues": "Portuguese", "deutsch": "German", "nederlands": "Dutch", "polski": "Polish",
    "català": "Catalan", "galego": "Galician", "svenska": "Swedish", "dansk": "Danish",
    "norsk": "Norwegian", "suomi": "Finnish", "türkçe": "Turkish", "русский": "Russian",
    "ελληνικά": "Greek", "日本語": "Japanese", "中文": "Chinese", "한국어": "Korean",
}


def resolve_language(value: str) -> str | None:
    """'fr', 'FR', 'fr-CA', 'french', 'français' → 'French'; None when unknown."""
    key = value.strip().lower()
    if len(key) > 3 and key[2] in "-_":  # a locale such as pt-BR, fr_CA, it-italy
        key = key[:2]
    return (LANGUAGES.get(key) or _BY_NAME.get(key) or _ALIASES.get(key)
            or _ENDONYMS.get(key))
