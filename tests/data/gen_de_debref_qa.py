#!/usr/bin/env python3
"""Builds the German evaluation sets de_debref_{dev,heldout}.json (SQuAD
format, XQuAD style) from real German prose: the German translation of the
Debian Reference (Debian package debian-reference-de 2.100, GPL-2+; text by
Osamu Aoki, German translation by Jens Seidel and Dominik Kuhlen and others,
see /usr/share/doc/debian-reference-de/copyright).

Paragraphs: the <p> elements of six chapters (ch01 GNU/Linux tutorial, ch02
package management, ch03 system initialisation, ch04 authentication, ch08
I18N/L10N, ch09 system tips) with 45-160 words and at least four German
function words, taken evenly spread over each chapter (at most 14/14/9/10/10/13:
68 paragraphs (ch03 and ch04 have fewer), whitespace collapsed). Every paragraph is in both files, so the
other paragraphs of the same chapter are the distractors.

Questions: written by hand for this set before any ranker was run on it,
phrased the way a translated XQuAD question is (other word forms, synonyms,
compounds joined or split, details of the paragraph). The answer is a
substring of the paragraph.

Split: a paragraph whose SHA-256 (of its text, UTF-8) starts with a byte
divisible by 3 is "dev" (its questions may be read while developing); the
questions of all other paragraphs are "heldout" and are only ever counted.

    python3 tests/data/gen_de_debref_qa.py   # needs debian-reference-de 2.100
"""
import glob, hashlib, html.parser, json, os, re, subprocess, sys

DOCS = "/usr/share/doc/debian-reference-de/docs"
PLAN = {"ch01": 14, "ch02": 14, "ch03": 9, "ch04": 10, "ch08": 10, "ch09": 13}
FUNC = re.compile(r"\b(der|die|und|ist|das|den|werden)\b")


class Paras(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.paras, self.cur, self.depth, self.title, self.in_title = [], None, 0, "", False

    def handle_starttag(self, tag, attrs):
        if tag == "p":
            if self.cur is None:
                self.cur, self.depth = [], 1
            else:
                self.depth += 1
        elif tag == "title":
            self.in_title = True

    def handle_endtag(self, tag):
        if tag == "p" and self.cur is not None:
            self.depth -= 1
            if self.depth == 0:
                self.paras.append(re.sub(r"\s+", " ", "".join(self.cur)).strip())
                self.cur = None
        elif tag == "title":
            self.in_title = False

    def handle_data(self, d):
        if self.cur is not None:
            self.cur.append(d)
        if self.in_title:
            self.title += d


def paragraphs():
    out = {}
    for ch, n in PLAN.items():
        p = Paras()
        with open(os.path.join(DOCS, ch + ".de.html"), encoding="utf-8") as f:
            p.feed(f.read())
        good = [x for x in p.paras if 45 <= len(x.split()) <= 160 and len(FUNC.findall(x)) >= 4]
        if len(good) > n:
            step = len(good) / n
            good = [good[int(i * step)] for i in range(n)]
        out[ch] = (re.sub(r"\s+", " ", p.title).strip(), good)
    return out


# (chapter, paragraph number within the chapter, question, answer substring)
QS = [
    ("ch01", 0, "Welche Taste benutzt man im grafischen Anmeldefenster, um vom Benutzernamen zum Passwort zu springen?", "TAB-Taste"),
    ("ch01", 0, "Was erscheint nach dem Start des Rechners, wenn eine grafische Oberfläche installiert wurde?", "einen grafischen Anmeldebildschirm"),
    ("ch01", 1, "Mit welcher Tastenkombination verlässt man die Shell?", "Strg-D"),
    ("ch01", 1, "Muss man für Control-D zusätzlich die Großschreibtaste gedrückt halten?", "müssen Sie hier nicht die Umschalt-Taste drücken"),
    ("ch01", 1, "Welches Kommando kann man statt ^D eintippen?", "exit"),
    ("ch01", 2, "Warum können gewöhnliche Benutzer nach der Standardinstallation das System nicht kaputt machen?", "korrekten Dateiberechtigungen"),
    ("ch01", 2, "Welche Anleitung sollte lesen, wer sich über Sicherheitslücken Sorgen macht?", "Securing Debian Manual"),
    ("ch01", 3, "Wie nennt man die Gesamtheit aller Verzeichnisse unter dem Wurzelverzeichnis?", "Verzeichnisbaum"),
    ("ch01", 3, "Was bezeichnet ../ in einer Pfadangabe?", "das jeweils übergeordnete Verzeichnis"),
    ("ch01", 3, "Womit vergleichen manche Leute den Verzeichnisbaum?", "Familien-Stammbaum"),
    ("ch01", 4, "Unter welchem Verzeichnis werden Hardwaregeräte wie Konsolenbildschirme abgebildet?", "/dev/"),
    ("ch01", 4, "Welcher Tradition folgt das Dateisystem von Debian?", "Unix-Tradition"),
    ("ch01", 5, "Mit welchem Befehl ändert root den Besitzer einer Datei?", "chown(1)"),
    ("ch01", 5, "Womit wechselt man die Gruppenzugehörigkeit einer Datei?", "chgrp(1)"),
    ("ch01", 5, "Welcher Befehl ändert die Zugriffsrechte von Dateien und Verzeichnissen?", "chmod(1)"),
    ("ch01", 6, "Wofür steht die Abkürzung UPG?", "user private group"),
    ("ch01", 6, "Auf welchen Wert kann man die umask dank privater Benutzergruppen gefahrlos setzen?", "0002"),
    ("ch01", 6, "Wer ist das einzige Mitglied einer privaten Benutzergruppe?", "dieser Benutzer"),
    ("ch01", 7, "Warum hat ein neu angelegtes Verzeichnis zwei Verweise?", "Das Verzeichnis \".\" verweist auf das Verzeichnis, in dem es erscheint"),
    ("ch01", 7, "Wodurch wächst die Linkzahl eines Elternverzeichnisses?", "mit jedem Hinzufügen eines neuen Unterverzeichnisses"),
    ("ch01", 8, "Wie groß ist eine benannte Pipe?", "immer Null"),
    ("ch01", 8, "Müssen zwei Prozesse, die über eine Named Pipe kommunizieren, unter demselben Konto laufen?", "nicht einmal unter dem gleichen Benutzerkonto"),
    ("ch01", 8, "Welche Erfindung von Unix gilt als besonders einflussreich?", "Pipes"),
    ("ch01", 9, "Als welcher Dateisystemtyp wird /run beim Hochfahren eingehängt?", "tmpfs"),
    ("ch01", 9, "Wofür dient das Verzeichnis /run?", "Speicherung kurzlebiger Statusdateien"),
    ("ch01", 10, "Wie wechselt man zwischen den virtuellen Konsolen?", "Alt-Fn-Tasten"),
    ("ch01", 10, "Kann dieser Editor mehrere Fenster gleichzeitig öffnen?", "Dies ist kein Multi-Fenster-Editor"),
    ("ch01", 11, "Welche Taste zeigt in less die Hilfe an?", "\"h\""),
    ("ch01", 11, "Welche Option von less schaltet farbige ANSI-Escape-Sequenzen ein?", "-R"),
    ("ch01", 11, "Wie lässt sich der Pager less noch erweitern?", "eval $(lesspipe)"),
    ("ch01", 12, "Welche Editoren stellen UTF-8-kodierte Texte richtig dar?", "Vim und Emacs"),
    ("ch01", 12, "Welche Locale empfiehlt sich für die grafische Umgebung?", "UTF-8-Locale"),
    ("ch01", 13, "Bieten alle Unix-ähnlichen Betriebssysteme vergleichbare Kommandos?", "entsprechende gleichbedeutende Befehle"),
    ("ch01", 13, "Warum können sich die Ausgaben der Befehle unterscheiden?", "Falls alias in der Shell verwendet wird"),
    ("ch02", 0, "Von welcher Infrastruktur für Qualitätssicherung profitiert die Testing-Suite?", "Qualitässicherungs-Infrastruktur"),
    ("ch02", 0, "Wie oft werden die Pakete von Testing aktualisiert?", "häufig genug"),
    ("ch02", 1, "Welche Veröffentlichung bietet die größte Stabilität?", "Nur die reine Stable-Veröffentlichung mit Sicherheitsaktualisierungen"),
    ("ch02", 1, "Warum ist eine Mischung aus Stable und einzelnen Testing-Paketen riskant?", "unpassenden Bibliotheksversionen"),
    ("ch02", 1, "Woher bekommt man neuere Programmversionen für Stable?", "bullseye-updates"),
    ("ch02", 2, "Wie alt muss ein Paket mindestens sein, bevor es nach Testing wandert?", "mindestens rund 10 Tage"),
    ("ch02", 2, "Welche Fehler prüft das Skript vor dem Übergang von Unstable nach Testing?", "veröffentlichungskritischen Fehler"),
    ("ch02", 3, "Wessen Interessen stehen für Debian an erster Stelle?", "Bedürfnissen unserer Anwender und der Gemeinschaft für Freie Software"),
    ("ch02", 3, "Hat Debian etwas gegen nicht-freie Werke?", "Wir haben nichts gegen unfreie Arbeiten"),
    ("ch02", 3, "Verlangt Debian Gebühren von anderen Distributionen?", "ohne dafür irgendwelche Gebühren zu erheben"),
    ("ch02", 4, "Welche Befehle sollte man im Zweifelsfall statt aptitude nehmen?", "apt-, apt-get- und apt-cache-Befehle"),
    ("ch02", 4, "Was hat die Komplexität von aptitude verursacht?", "Rückentwicklungen"),
    ("ch02", 5, "Welcher reguläre Ausdruck zeigt gelöschte Pakete, deren Konfigurationsdateien noch vorhanden sind?", "~c"),
    ("ch02", 5, "Welche Taste klappt alle passenden Pakete in der Anzeige auf?", "\"[\""),
    ("ch02", 6, "Was sollte man vor dem Upgrade auf eine neue stabile Version lesen?", "Veröffentlichungshinweise (Release Notes)"),
    ("ch02", 6, "Woher kommen die meisten Komplikationen beim Übergang von Paketen?", "Paketabhängigkeiten"),
    ("ch02", 7, "Worauf verweist der Begriff Distribution?", "sowohl auf \"Suite\" wie auch auf \"Codename\""),
    ("ch02", 7, "Wo sind die Bereiche des Archivs aufgelistet?", "Components"),
    ("ch02", 8, "Womit lassen sich Programme mit ähnlicher Funktion nebeneinander installieren?", "update-alternatives(1)"),
    ("ch02", 8, "Welches Programm kann der Befehl vi starten, wenn vim und nvi installiert sind?", "vim"),
    ("ch02", 9, "Was passiert, wenn ein Paket vorhandene Dateien eines anderen Pakets überschreiben würde?", "ein Fehler an das aufrufende Programm zurückgegeben"),
    ("ch02", 9, "Welches Programm entpackt die Pakete?", "dpkg(1)"),
    ("ch02", 10, "Wie wählt man zwischen mehreren ähnlichen Paketen, ohne alles auszuprobieren?", "gesunden Menschenverstand"),
    ("ch02", 11, "Welche Dateien nutzen die Regeln von apt_preferences?", "Release-Dateien"),
    ("ch02", 11, "Funktioniert das Pinning mit dem Codenamen sid?", "aber nicht \"Pin: release a=sid\""),
    ("ch02", 12, "Welche Pin-Priorität hat das Experimental-Archiv standardmäßig?", "immer 1"),
    ("ch02", 12, "Muss man die Priorität für Experimental in /etc/apt/preferences eintragen?", "Es ist nicht nötig"),
    ("ch02", 13, "Unterstützt Debian das Zurückstufen von Paketversionen offiziell?", "nicht offiziell unterstützt"),
    ("ch02", 13, "Was sollte man bei kritischen Systemen nach einer Wiederherstellung tun?", "alle wichtigen Daten auf dem System sichern"),
    ("ch03", 0, "Wo speichert UEFI die Variablen der Boot-Konfiguration?", "NVRAM"),
    ("ch03", 0, "Was ist eine EFI-Systempartition?", "eine spezielle Partition"),
    ("ch03", 0, "Was kam auf älteren PCs statt UEFI zum Einsatz?", "BIOS und der MBR"),
    ("ch03", 1, "Welche Stufe des Startvorgangs ist der Bootloader?", "zweite Stufe"),
    ("ch03", 1, "Welche Abbilder lädt der Bootloader in den Arbeitsspeicher?", "System-Kernel-Image und das initrd-Image"),
    ("ch03", 2, "Welches Programm läuft als erstes aus dem initialen Wurzeldateisystem?", "\"/init\""),
    ("ch03", 2, "Wozu dient das kleine Debian-System beim Booten?", "Flexibilität für den Boot-Prozess"),
    ("ch03", 3, "Welches Ziel versucht systemd beim Hochfahren zu starten?", "default.target"),
    ("ch03", 3, "Auf welches Target zeigt default.target meistens?", "graphical.target"),
    ("ch03", 3, "Welche besonderen Targets hängen die Dateisysteme ein?", "local-fs.target"),
    ("ch03", 4, "Welcher Dienst protokolliert unter systemd die Meldungen des Kernels?", "systemd-journald.service"),
    ("ch03", 4, "Mit welchem Befehl liest man das binäre Journal?", "journalctl(1)"),
    ("ch03", 5, "In welcher Datei passt man das Verhalten von rsyslog an?", "/etc/rsyslog.conf"),
    ("ch03", 5, "Welche Logdateien erzeugt rsyslogd unter systemd?", "traditionelle permanente ASCII-Logdaten"),
    ("ch03", 6, "Welche Suchmuster sind bei Unit-Namen erlaubt?", "Suchmuster im Shell-Stil"),
    ("ch03", 6, "Ist die Endung .service beim Namen einer Unit nötig?", "optional"),
    ("ch03", 7, "Seit welcher Kernelversion gibt es udev?", "2.6"),
    ("ch03", 7, "Mit welchem Befehl lädt udev Kernelmodule?", "modprobe(8)"),
    ("ch03", 7, "Was legt udev nach der Erkennung eines Geräts an?", "Geräteknoten"),
    ("ch04", 0, "Über welche Pakete stellt ein LDAP-Server Kontodaten bereit?", "libpam-ldap- und libnss-ldap-Pakete"),
    ("ch04", 0, "Woher stammen die Angaben des Autors zu LDAP?", "komplett aus zweiter Hand"),
    ("ch04", 1, "Wie beschränkt man die Nutzung von su auf die Gruppe root?", "pam_wheel.so"),
    ("ch04", 1, "Von wem stammt die Redewendung in der alten info-Seite zu su?", "Richard M. Stallman"),
    ("ch04", 2, "Warum sollte man Passwörter nicht unverschlüsselt übers Internet schicken?", "wo es abgehört werden kann"),
    ("ch04", 2, "Wie heißt der Vorgänger von TLS?", "Secure Sockets Layer"),
    ("ch04", 3, "Welcher Port wird heute zum Einliefern von E-Mails verwendet?", "587"),
    ("ch04", 3, "Welches Authentifizierungsverfahren schützt das Passwort bei POP?", "Authenticated Post Office Protocol"),
    ("ch04", 3, "Was kostet die Verschlüsselung?", "CPU-Zeit"),
    ("ch04", 4, "Aus welchen Teilen besteht SSH?", "OpenSSH-Client (ssh(1)) und dem OpenSSH-Daemon (sshd(8))"),
    ("ch04", 4, "Wie kann man unsichere Protokolle wie POP durch das Internet tunneln?", "Port-Forwarding-Funktionalität"),
    ("ch04", 5, "Welche Authentifizierung erlaubt eine Fernanmeldung ohne Passwort?", "Public Key Authentication"),
    ("ch04", 5, "Was geschieht bei der Challenge-Response-Authentifizierung?", "es wird eine Aufgabe gestellt"),
    ("ch04", 6, "Womit können Angreifer trotz SSH Passwörter erraten?", "Brute-Force-Atttacken"),
    ("ch04", 6, "Was verbessert die Lage zusätzlich zu den Sicherheitswerkzeugen?", "Firewall-Richtlinien"),
    ("ch04", 7, "Was kann jemand mit Zugang zur root-Shell tun?", "jegliche Passwörter auf dem System zurücksetzen"),
    ("ch04", 7, "Mit welchen Werkzeugen knackt man Passwörter?", "john oder crack"),
    ("ch04", 8, "Wessen Passwort verlangt sudo?", "das Passwort eines normalen Benutzers"),
    ("ch04", 8, "In welcher Datei wird sudo konfiguriert?", "/etc/sudoers"),
    ("ch04", 8, "Wo findet man Beispiele für die Konfiguration von sudo?", "/usr/share/doc/sudo/examples/sudoers"),
    ("ch08", 0, "Woher kommt die Zahl 18 in der Abkürzung I18N?", "17, 18 bzw. 10 Buchstaben"),
    ("ch08", 0, "Welches englische Wort kürzt L10N ab?", "Localization"),
    ("ch08", 1, "Welchem Standard entspricht der Sprachcode in LANG?", "ISO 639"),
    ("ch08", 1, "Nach welcher Norm wird der Ländercode angegeben?", "ISO 3166"),
    ("ch08", 2, "Wofür steht die Abkürzung UTF?", "Unicode Transformation Format"),
    ("ch08", 2, "Ändert sich die Größe von ASCII-Text bei der Umwandlung nach UTF-8?", "exakt den gleichen Inhalt und die gleiche Größe"),
    ("ch08", 3, "Welcher Texteditor gehört zur GNOME-Arbeitsumgebung?", "gedit(1)"),
    ("ch08", 3, "Was braucht man außer einer UTF-8-Locale, um fremdsprachige Texte zu bearbeiten?", "Schriftarten und Eingabemethoden"),
    ("ch08", 4, "Welche Sprache nutzen en_US.UTF-8 und die C-Locale für ihre Meldungen?", "US-Englisch"),
    ("ch08", 4, "Welches Gebietsschema verbindet das Verhalten der C-Locale mit UTF-8?", "C.UTF-8"),
    ("ch08", 5, "Welche Kodierung nutzt mount standardmäßig für vfat?", "CP437"),
    ("ch08", 5, "Wie legt man UTF-8 für Dateinamen beim Einhängen fest?", "explizite mount-Option"),
    ("ch08", 6, "Wo trägt man utf8 für einen USB-Stick in GNOME ein?", "Mount-Optionen"),
    ("ch08", 6, "Wie erreicht man die Einhängeoptionen des Sticks auf dem Desktop?", "Rechtsklick auf das entsprechende Icon"),
    ("ch08", 7, "Welche Zeichenkodierung verwendet Samba für alte DOS-Clients?", "CP850"),
    ("ch08", 7, "Mit welcher Einstellung ändert man den Zeichensatz für alte Clients?", "dos charset"),
    ("ch08", 8, "Welche Variable überschreibt alle LC-Variablen?", "$LC_ALL"),
    ("ch08", 8, "Wo sind die Details zu den Locale-Variablen beschrieben?", "locale(7)-Handbuchseite"),
    ("ch08", 9, "Welches Eingabesystem unterstützt auch europäische Sprachen unter GNOME mit Wayland?", "IBus"),
    ("ch08", 9, "Über welches Paket empfiehlt GNOME ibus?", "gnome-shell"),
    ("ch09", 0, "Wie springt man schnell in ein tief verschachteltes Verzeichnis?", "cd **"),
    ("ch09", 1, "Welche Tastenkombination durchsucht die Befehlshistorie?", "Strg-R"),
    ("ch09", 1, "Wie ruft man einen früheren Befehl schnell wieder auf?", "Strg-R"),
    ("ch09", 2, "Warum ist ein Alias besser als die Umgebungsvariable GREP_OPTIONS?", "da die Farben auch in Pager-Programmen wie less(1) sichtbar sind"),
    ("ch09", 2, "Welche Option schaltet die Farben ab, wenn die Ausgabe an andere Programme geht?", "--color=auto"),
    ("ch09", 3, "In welchem Verzeichnis liegen die .desktop-Dateien?", "/usr/share/applications/"),
    ("ch09", 3, "Welches Paket erstellt das Programmmenü?", "xdg-utils"),
    ("ch09", 4, "Welche Eingabemethoden werden für kitty genannt?", "ibus oder fcitx5"),
    ("ch09", 4, "Wann kann man eine GUI-Anwendung mit eigenen Umgebungsvariablen starten?", "kein vollständiger Dateipfad eingetragen"),
    ("ch09", 5, "Auf welchen Wert setzt man $TERM, wenn der xterm-Eintrag beim Fernzugriff nicht funktioniert?", "xterm-r6"),
    ("ch09", 5, "Welcher Terminaltyp ist der kleinste gemeinsame Nenner?", "dumb"),
    ("ch09", 6, "Warum können Laufwerke bei jedem Start andere Namen bekommen?", "Neukonfiguration einer Partition"),
    ("ch09", 7, "Wie misst man die Lesegeschwindigkeit einer Festplatte?", "hdparm -tT /dev/hda"),
    ("ch09", 7, "Welche Einstellung von hdparm ist gefährlich?", "Multiple 16 Sector I/O"),
    ("ch09", 8, "Warum sollte man eine Logdatei nicht mit rm löschen, um sie zu leeren?", "Zugriffsversuche auf die Datei erfolgen könnten"),
    ("ch09", 9, "Woran erkennt man harte Links?", "Anzahl der Links"),
    ("ch09", 9, "Welche Inode-Nummer teilen baz und foo?", "2738404"),
    ("ch09", 10, "Welches Paket hängt den verschlüsselten USB-Stick ein?", "udisks2"),
    ("ch09", 10, "Wie kann das Passwort für den Stick automatisch eingegeben werden?", "Schlüsselbund"),
    ("ch09", 11, "Gegen welche Header sollten normale Programme kompiliert werden?", "/usr/include/linux"),
    ("ch09", 11, "Aus welchem Quellpaket stammen die Header in libc6-dev?", "glibc-Quellpaket"),
    ("ch09", 12, "Warum sind viele Firmwarepakete nicht frei?", "Binärdaten ohne den zugehörigen Quelltext"),
    ("ch09", 12, "Wozu braucht man die Firmware?", "damit das Gerät wie vorgesehen funktionieren kann"),
]


def is_dev(text):
    return hashlib.sha256(text.encode("utf-8")).digest()[0] % 3 == 0


def main():
    ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "debian-reference-de"],
                         capture_output=True, text=True).stdout.strip()
    if ver != "2.100":
        sys.exit("needs debian-reference-de 2.100 (installed: %s)" % (ver or "none"))
    paras = paragraphs()
    root = os.path.dirname(os.path.abspath(__file__))
    for part in ("dev", "heldout"):
        data = []
        for ch, (title, ps) in paras.items():
            entries = []
            for i, ctx in enumerate(ps):
                qas = []
                if (part == "dev") == is_dev(ctx):
                    for k, (qch, qi, q, a) in enumerate(QS):
                        if qch != ch or qi != i:
                            continue
                        start = ctx.find(a)
                        if start < 0:
                            sys.exit("answer %r not in %s-%d" % (a, ch, i))
                        qas.append({"id": "%s-%d-%d" % (ch, i, k), "question": q,
                                    "answers": [{"text": a, "answer_start": start}]})
                entries.append({"context": ctx, "qas": qas})
            data.append({"title": "debian-reference-de %s: %s" % (ch, title), "paragraphs": entries})
        for qch, qi, q, a in QS:
            if qi >= len(paras[qch][1]):
                sys.exit("no paragraph %s-%d" % (qch, qi))
        with open(os.path.join(root, "de_debref_%s.json" % part), "w", encoding="utf-8") as f:
            json.dump({"version": "de-debref-1 (debian-reference-de 2.100, GPL-2+)", "data": data},
                      f, ensure_ascii=False, indent=0)
            f.write("\n")


if __name__ == "__main__":
    main()
