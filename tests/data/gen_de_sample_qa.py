#!/usr/bin/env python3
"""Builds tests/data/de_sample_qa.json: a small SQuAD-format German set over
the German documents of data/sample (each section or paragraph block is one
"paragraph"). The questions were written for this set, phrased the way a
translated question is (other inflections, compounds joined or split), and
are fixed here; regenerate after editing the documents:
    python3 tests/data/gen_de_sample_qa.py > tests/data/de_sample_qa.json"""
import json, os, re, sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DOCS = ["handbook/reisekostenrichtlinie.md", "handbook/homeoffice-richtlinie.md",
        "it/passwortrichtlinie.txt", "recipes/linsensuppe.txt",
        "support/kundensupport-leitfaden.md"]

# (substring of the paragraph, question)
QS = [
    ("vorab von der Teamleitung", "Wer muss eine Dienstreise vorher genehmigen?"),
    ("vorab von der Teamleitung", "Welche Reisen brauchen zusätzlich eine Freigabe durch die Geschäftsführung?"),
    ("in der 2. Klasse", "Ab welcher Fahrtdauer darf man in der ersten Klasse Bahn fahren?"),
    ("in der 2. Klasse", "Wann wird die Bahncard bezahlt?"),
    ("Inlandsflüge", "Wann sind Flüge innerhalb Deutschlands erlaubt?"),
    ("Inlandsflüge", "Welche Klasse bucht man bei einer Flugreise?"),
    ("Kilometerpauschale", "Wie viel bekommt man pro gefahrenem Kilometer mit dem eigenen Pkw?"),
    ("Kilometerpauschale", "Werden Parkkosten erstattet?"),
    ("Hotelkosten", "Wie teuer darf ein Hotelzimmer pro Übernachtung sein?"),
    ("Hotelkosten", "Welche Obergrenze gilt für Hotels in Frankfurt?"),
    ("steuerlichen Pauschalen", "Wie hoch ist die Verpflegungspauschale für einen vollen Tag?"),
    ("steuerlichen Pauschalen", "Um wie viel wird die Pauschale gekürzt, wenn das Frühstück gestellt wird?"),
    ("Vorschuss", "Ab welchen voraussichtlichen Kosten kann man einen Reisevorschuss beantragen?"),
    ("spätestens **30 Tage**", "Bis wann muss die Abrechnung nach dem Ende der Reise eingereicht sein?"),
    ("spätestens **30 Tage**", "Wie lange muss man die Originalbelege aufbewahren?"),
    ("bis zu drei Tage pro Woche", "An wie vielen Tagen in der Woche darf man mobil arbeiten?"),
    ("bis zu drei Tage pro Woche", "Welcher Wochentag ist der Teamtag im Büro?"),
    ("Ende der Probezeit", "Ab wann ist das mobile Arbeiten möglich?"),
    ("Ende der Probezeit", "Wie viele Arbeitstage im Jahr darf man aus dem Ausland arbeiten?"),
    ("Ausstattungspauschale", "Wie hoch ist die Pauschale für die Einrichtung des Arbeitsplatzes zu Hause?"),
    ("Ausstattungspauschale", "Wo kann man sich einen Stuhl für das Büro ausleihen?"),
    ("Kernarbeitszeit", "Zwischen welchen Uhrzeiten liegt die Kernzeit?"),
    ("Kernarbeitszeit", "Wie lange dauert die gesetzliche Ruhezeit?"),
    ("Vertrauliche Unterlagen", "Über welche Verbindung erreicht man das Netz der Firma?"),
    ("mindestens 14 Zeichen", "Wie viele Zeichen muss ein Passwort mindestens lang sein?"),
    ("mindestens 14 Zeichen", "Sind Sonderzeichen im Passwort vorgeschrieben?"),
    ("alle 90 Tage", "Muss man das Passwort regelmäßig wechseln?"),
    ("Lizenz", "Wo dürfen Passwörter nicht gespeichert werden?"),
    ("Zwei-Faktor", "Ist die SMS als zweiter Faktor noch zugelassen?"),
    ("Zwei-Faktor", "Welche Hardwareschlüssel sind für die Anmeldung zugelassen?"),
    ("zehn fehlgeschlagenen", "Nach wie vielen falschen Anmeldungen wird ein Konto gesperrt?"),
    ("versehentlich weitergegeben", "Wohin meldet man ein Passwort, das man aus Versehen weitergegeben hat?"),
]

def paragraphs(path):
    text = open(os.path.join(ROOT, "data", "sample", path), encoding="utf-8").read()
    if path.endswith(".md"):
        parts = re.split(r"\n(?=#{1,3} )", text)
    else:
        parts = re.split(r"\n\s*\n", text)
    return [p.strip() for p in parts if len(p.strip().split()) >= 8]

data = []
for path in DOCS:
    paras = []
    for p in paragraphs(path):
        qas = [{"id": "de%03d" % i, "question": q, "answers": []}
               for i, (key, q) in enumerate(QS) if key in p]
        paras.append({"context": p, "qas": qas})
    data.append({"title": os.path.basename(path), "paragraphs": paras})
used = sum(len(p["qas"]) for a in data for p in a["paragraphs"])
if used != len(QS):
    sys.exit("a question's key matches no paragraph (or several)")
json.dump({"version": "de-sample-1", "data": data}, sys.stdout, ensure_ascii=False, indent=1)
print()
