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
# (substring of the paragraph, question, gold answers: substrings of the
# paragraph as SQuAD has them, for `mrag eval-answers`)
QS = [
    ("vorab von der Teamleitung", "Wer muss eine Dienstreise vorher genehmigen?", ["Teamleitung"]),
    ("vorab von der Teamleitung", "Welche Reisen brauchen zusätzlich eine Freigabe durch die Geschäftsführung?",
     ["Reisen ins\nAusland (außer EU und Schweiz)"]),
    ("in der 2. Klasse", "Ab welcher Fahrtdauer darf man in der ersten Klasse Bahn fahren?", ["mehr als vier Stunden"]),
    ("in der 2. Klasse", "Wann wird die Bahncard bezahlt?", ["wenn sie sich voraussichtlich innerhalb\neines Jahres amortisiert"]),
    ("Inlandsflüge", "Wann sind Flüge innerhalb Deutschlands erlaubt?", ["wenn die Bahnfahrt länger als sechs Stunden\ndauert"]),
    ("Inlandsflüge", "Welche Klasse bucht man bei einer Flugreise?", ["Economy Class"]),
    ("Kilometerpauschale", "Wie viel bekommt man pro gefahrenem Kilometer mit dem eigenen Pkw?", ["0,30 €"]),
    ("Kilometerpauschale", "Werden Parkkosten erstattet?", ["Parkgebühren werden gegen Beleg erstattet"]),
    ("Hotelkosten", "Wie teuer darf ein Hotelzimmer pro Übernachtung sein?", ["130 €"]),
    ("Hotelkosten", "Welche Obergrenze gilt für Hotels in Frankfurt?", ["180 €"]),
    ("steuerlichen Pauschalen", "Wie hoch ist die Verpflegungspauschale für einen vollen Tag?", ["28 €"]),
    ("steuerlichen Pauschalen", "Um wie viel wird die Pauschale gekürzt, wenn das Frühstück gestellt wird?", ["5,60 €"]),
    ("Vorschuss", "Ab welchen voraussichtlichen Kosten kann man einen Reisevorschuss beantragen?", ["über 500 €"]),
    ("spätestens **30 Tage**", "Bis wann muss die Abrechnung nach dem Ende der Reise eingereicht sein?", ["30 Tage"]),
    ("spätestens **30 Tage**", "Wie lange muss man die Originalbelege aufbewahren?", ["drei Monate"]),
    ("bis zu drei Tage pro Woche", "An wie vielen Tagen in der Woche darf man mobil arbeiten?", ["drei Tage"]),
    ("bis zu drei Tage pro Woche", "Welcher Wochentag ist der Teamtag im Büro?", ["Dienstag"]),
    ("Ende der Probezeit", "Ab wann ist das mobile Arbeiten möglich?", ["nach Ende der Probezeit"]),
    ("Ende der Probezeit", "Wie viele Arbeitstage im Jahr darf man aus dem Ausland arbeiten?", ["20 Arbeitstage"]),
    ("Ausstattungspauschale", "Wie hoch ist die Pauschale für die Einrichtung des Arbeitsplatzes zu Hause?", ["300 €"]),
    ("Ausstattungspauschale", "Wo kann man sich einen Stuhl für das Büro ausleihen?", ["Facility-Team"]),
    ("Kernarbeitszeit", "Zwischen welchen Uhrzeiten liegt die Kernzeit?", ["zwischen 10:00 und 15:00 Uhr"]),
    ("Kernarbeitszeit", "Wie lange dauert die gesetzliche Ruhezeit?", ["elf Stunden"]),
    ("Vertrauliche Unterlagen", "Über welche Verbindung erreicht man das Netz der Firma?", ["VPN"]),
    ("mindestens 14 Zeichen", "Wie viele Zeichen muss ein Passwort mindestens lang sein?", ["14 Zeichen"]),
    ("mindestens 14 Zeichen", "Sind Sonderzeichen im Passwort vorgeschrieben?", ["Sonderzeichen sind erlaubt, aber nicht\nvorgeschrieben"]),
    ("alle 90 Tage", "Muss man das Passwort regelmäßig wechseln?", ["Passwörter müssen nicht mehr alle 90 Tage\ngeändert werden"]),
    ("Lizenz", "Wo dürfen Passwörter nicht gespeichert werden?", ["im Browser, in\nTabellen oder auf Zetteln"]),
    ("Zwei-Faktor", "Ist die SMS als zweiter Faktor noch zugelassen?", ["SMS ist als zweiter Faktor seit 2025 nicht mehr zugelassen"]),
    ("Zwei-Faktor", "Welche Hardwareschlüssel sind für die Anmeldung zugelassen?", ["FIDO2"]),
    ("zehn fehlgeschlagenen", "Nach wie vielen falschen Anmeldungen wird ein Konto gesperrt?", ["zehn"]),
    ("versehentlich weitergegeben", "Wohin meldet man ein Passwort, das man aus Versehen weitergegeben hat?",
     ["security@nordlicht.example"]),
    # added for the evidence (eval-answers): other phrasings, the other documents
    ("zehn fehlgeschlagenen", "Wie lange bleibt ein Konto nach zu vielen Fehlversuchen gesperrt?", ["15 Minuten"]),
    ("zehn fehlgeschlagenen", "Welche Durchwahl hilft beim Entsperren des Kontos?", ["4242"]),
    ("Tellerlinsen", "Wie viele Gramm Tellerlinsen braucht man für die Suppe?", ["250 g"]),
    ("Für 4 Personen", "Wann kocht die Kantine die Linsensuppe?", ["jeden ersten Mittwoch im Monat"]),
    ("Für 4 Personen", "Wie lange dauert die Zubereitung der Suppe?", ["45 Minuten"]),
    ("leise köcheln", "Wie lange müssen die Linsen köcheln?", ["30 Minuten"]),
    ("leise köcheln", "Warum soll man die Linsen erst am Ende salzen?", ["sonst bleiben sie hart"]),
    ("Tipp der Küche", "Wie lange hält sich die Suppe im Kühlschrank?", ["drei Tage"]),
    ("bis 200 €", "Bis zu welchem Betrag darf der Support eine Rückerstattung selbst freigeben?", ["200 €"]),
    ("bis 200 €", "Wer genehmigt höhere Rückerstattungen?", ["Teamleitung Support (Herr Okafor)", "Herr Okafor"]),
    ("bis 200 €", "Innerhalb welcher Frist ist bei Jahresverträgen eine anteilige Erstattung möglich?", ["30 Tage"]),
    ("niemals nach Passwörtern", "Nach wie vielen Tagen wird der Zugriff auf einen Workspace entzogen?", ["7 Tagen"]),
    ("Im Deutschen siezen", "Wann duzt der Support Kundinnen und Kunden?", ["sie bieten selbst das Du an"]),
    ("Hotelkosten", "In welchen Städten gilt die höhere Hotelgrenze?", ["München, Frankfurt am Main und London"]),
    ("Kernarbeitszeit", "Wann beginnt die Kernarbeitszeit?", ["10:00"]),
    ("Ausstattungspauschale", "Welche Geräte stellt die IT für das Homeoffice?", ["Laptop, Headset und ein zweiter Monitor"]),
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
        qas = []
        for i, (key, q, golds) in enumerate(QS):
            if key not in p:
                continue
            for g in golds:
                if g not in p and g.replace("\n", " ") not in " ".join(p.split()):
                    sys.exit("answer %r of %r is not in its paragraph" % (g, q))
            qas.append({"id": "de%03d" % i, "question": q,
                        "answers": [{"text": g, "answer_start": p.find(g)} for g in golds]})
        paras.append({"context": p, "qas": qas})
    data.append({"title": os.path.basename(path), "paragraphs": paras})
used = sum(len(p["qas"]) for a in data for p in a["paragraphs"])
if used != len(QS):
    sys.exit("a question's key matches no paragraph (or several)")
json.dump({"version": "de-sample-2", "data": data}, sys.stdout, ensure_ascii=False, indent=1)
print()
