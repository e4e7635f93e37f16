//! Spanish phrases (accents and "ñ" fold away: "tenéis" is matched as "teneis").

use super::CommandKind::{
    Access, Erase, Export, LimitSensitive, Object, OptOutAiTraining, OptOutSale, Rectify, Restrict,
    WithdrawConsent,
};
use super::rules::{Cues, Language, fixed, rule};

/// Spanish rules.
pub(crate) const LANGUAGE: Language = Language {
    code: "es",
    fragments: &[
        (
            "DATA",
            "(?:(?:todos )?(?:mis|nuestros) datos(?: (?:personales|privados|de usuario|de cliente))?|todos los datos (?:personales )?(?:que {HOLD} (?:de|sobre)|sobre|acerca de) (?:mi|nosotros)|(?:toda )?(?:mi|nuestra) informacion(?: personal)?)",
        ),
        (
            "ME",
            "(?:de mi|sobre mi|acerca de mi|de nosotros|sobre nosotros|mios|mias)",
        ),
        // "de mi" is also "of my" once accents fold away, so "about me" needs a verb of holding.
        (
            "HOLD",
            "(?:teneis|tienen|tienes|guardais|guardan|almacenais|almacenan|conservais|conservan|tratais|tratan|poseeis|poseen|recopilais|recopilan|hay|existen|sabeis|saben)",
        ),
        (
            "ABOUT",
            "(?:los |todos los |la |toda la |que )?(?:datos|informacion)(?: personales| personal)? (?:que )?{HOLD}~2 {ME}|(?:los |todos los )?datos (?:personales )?(?:sobre|acerca de) (?:mi|nosotros)",
        ),
        // Imperative, infinitive and present forms only: "borré mis datos" (I deleted) is not
        // a request. "borre" stays, as it is both the polite imperative and, without its
        // accent, the past tense.
        (
            "ERASE",
            "(?:(?:borr|elimin)(?:a|ad|ar|ais|an|ando|as|e|en|eis|es|emos)|suprim(?:a|an|ais|as|e|en|id|ir|iendo)|destru(?:ye|yan|yais|yas|id|ir|yendo))",
        ),
        (
            "ACCOUNT",
            "(?:mi|nuestra) (?:cuenta|perfil)(?: de (?:usuario|cliente))?",
        ),
        (
            "CONTENT",
            "(?:datos|conversaciones|chats?|mensajes|informacion|contenidos?|textos|preguntas|charlas)",
        ),
        (
            "TRAIN",
            "(?:entren[a-z]*|(?:para )?(?:mejorar|alimentar) (?:vuestra |su |tu |la )?(?:ia|inteligencia artificial|modelos?))",
        ),
        (
            "AD",
            "(?:publicidad|newsletters?|boletin(?:es)?|ofertas|promociones|correos? (?:comerciales|promocionales|publicitarios|de marketing)|emails? (?:comerciales|promocionales|de marketing)|marketing|spam|comunicaciones comerciales)",
        ),
        (
            "USE",
            "(?:usar|utilizar|tratar|procesar|analizar|guardar|almacenar|compartir|recopilar)",
        ),
    ],
    rules: &[
        rule(Erase, 0.9, "{ERASE}~3 (?:{DATA}|{ABOUT})"),
        rule(
            Erase,
            0.8,
            "{ERASE}(?: (?:completamente|definitivamente|del todo))? {ACCOUNT}",
        ),
        rule(
            Erase,
            0.88,
            "{ERASE}~2 todo lo que (?:sabeis|saben|teneis|tienen|sabes|tienes|guardais|guardan) (?:de|sobre) (?:mi|nosotros)",
        ),
        rule(
            Erase,
            0.9,
            "olvid(?:ame|adme|eme|enme)|(?:que|quiero que|por favor) me olvid[a-z]*",
        ),
        rule(
            Erase,
            0.95,
            "derecho al olvido|derecho (?:de|a la) (?:supresion|cancelacion|borrado|eliminacion)",
        ),
        rule(
            Erase,
            0.9,
            "(?:supresion|eliminacion|borrado) de (?:todos )?(?:mis|nuestros) datos|solicitud de (?:supresion|borrado|eliminacion)|(?:supresion|eliminacion|borrado) de {ACCOUNT}",
        ),
        rule(
            Erase,
            0.86,
            "(?:mis|nuestros) datos~3 (?:sean |esten |queden )?(?:borrad|eliminad|suprimid|destruid)[a-z]*",
        ),
        rule(
            Access,
            0.9,
            "(?:que|cuales) (?:[a-z]+ )?(?:datos|informacion)(?: personales| personal)? (?:[a-z]+ )?{HOLD}~2 {ME}",
        ),
        rule(
            Access,
            0.8,
            "que (?:sabeis|saben|sabes|teneis|tienen) (?:de|sobre|acerca de) (?:mi|nosotros)|que {HOLD}(?: guardado| almacenado| registrado)? (?:sobre|acerca de) (?:mi|nosotros)",
        ),
        rule(Access, 0.85, "(?:acceder|acceso) (?:a )?(?:{DATA}|{ABOUT})"),
        rule(
            Access,
            0.85,
            "(?:ver|consultar|mostrad(?:me)?|muestrame|muestrenme|ensename|ensenadme|ensenenme|revisar)~2 (?:{DATA}|{ABOUT})",
        ),
        rule(Access, 0.92, "derecho (?:de|a|al) acceso"),
        rule(
            Access,
            0.72,
            "{HOLD}~2 (?:datos|informacion) (?:mios|mias|sobre mi|acerca de mi)",
        ),
        rule(
            Export,
            0.86,
            "(?:export|descarg|envi|mand|transfer|obten|recib|dame|dadme|denme|pas[ae]me)[a-z]*~3 (?:una )?(?:copia (?:de )?)?{DATA}",
        ),
        rule(Export, 0.86, "copia~2 (?:de )?(?:{DATA}|{ABOUT})"),
        rule(Export, 0.92, "portabilidad"),
        rule(
            Rectify,
            0.85,
            "(?:correg|rectific|actualiz|modific|arregl|corrij)[a-z]*~2 {DATA}",
        ),
        fixed(
            Rectify,
            0.85,
            "(?:mi|mis) (?:nombre|apellidos?|direccion|correo(?: electronico)?|email|e-mail|fecha de nacimiento|telefono|numero de telefono|datos|informacion)~3 (?:es|son|esta|estan) (?:mal|incorrect[oa]s?|erroneo?a?s?|equivocad[oa]s?|desactualizad[oa]s?|mal escrit[oa]s?|no (?:es|son) correct[oa]s?)",
        ),
        rule(
            Rectify,
            0.85,
            "(?:habeis|han|has) (?:escrito|puesto|registrado|guardado) mal (?:mi|mis)",
        ),
        rule(
            Rectify,
            0.95,
            "derecho (?:de|a la) rectificacion|rectificacion de (?:mis )?datos",
        ),
        rule(
            WithdrawConsent,
            0.95,
            "(?:retir|revoc|anul)[a-z]*~2 (?:mi|el|mis) (?:consentimiento|permiso|autorizacion)(?:s|es)?",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "ya no (?:doy mi |consiento|autorizo|acepto|estoy de acuerdo)",
        ),
        fixed(
            WithdrawConsent,
            0.88,
            "(?:dejad|dejen|deja|dejar|para|parad|paren|parar) de {USE}~1 {DATA}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "no (?:useis|usen|uses|utiliceis|utilicen|utilices|trateis|traten|analiceis|analicen|compartais|compartan)~1 {DATA}~3 (?:para|con|en)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:no|ya no) (?:quiero|deseo|queremos) (?:seguir )?recibi(?:r|endo)~3 {AD}|no (?:me )?(?:envieis|envien|mandeis|manden) (?:mas )?{AD}",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:darme|darse|dadme|denme|dame|darnos) de baja~3 (?:{AD}|lista|correos|emails)|baja de~2 (?:{AD}|lista de correo)",
        ),
        fixed(
            WithdrawConsent,
            0.85,
            "(?:dejad|dejen|deja|parad|paren) de (?:enviarme|mandarme|escribirme|enviarnos)~3 (?:{AD}|correos|emails|mensajes|sms)",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:no|nunca|ni)~6 {CONTENT}~5 {TRAIN}",
        ),
        fixed(
            OptOutAiTraining,
            0.92,
            "(?:exclu|retir|sac)[a-z]*~5 (?:del|de los|de|de la) (?:entrenamiento|modelos?|ia)",
        ),
        fixed(
            OptOutAiTraining,
            0.93,
            "(?:me opongo|oponerme|nos oponemos)~6 (?:entrenamiento|{TRAIN})",
        ),
        rule(
            Object,
            0.9,
            "(?:me opongo|nos oponemos)~3 (?:al tratamiento|a que|al uso|a la elaboracion de perfiles|al perfilado|a la publicidad|al marketing|a la utilizacion)|derecho (?:de|a la) oposicion",
        ),
        rule(
            Restrict,
            0.9,
            "(?:limit|restring|restrinj)[a-z]*~3 (?:el |del )?tratamiento~3 (?:de )?{DATA}|limitacion del tratamiento|derecho a la limitacion",
        ),
        fixed(
            OptOutSale,
            0.9,
            "(?:no quiero que )?(?:no )?(?:vendais|vendan|vendas|compartais|compartan|compartas|cedais|cedan|revendais|revendan)~1 {DATA}",
        ),
        fixed(
            LimitSensitive,
            0.92,
            "limit[a-z]*~3 (?:de )?(?:mis )?datos sensibles",
        ),
    ],
    cues: Cues {
        negation: "no|nunca|jamas|ni",
        neutral: &[
            "se",
            "sabemos",
            "sabia",
            "entiendo",
            "encuentro",
            "consigo",
            "puedo",
            "logro",
            "podeis",
            "pueden",
            "puedes",
            "sabe",
            "estoy",
        ],
        question: "como|es posible|donde (?:puedo|se)|que es|en que consiste|que significa",
        trailing_negation: "",
        subjects: &["vosotros", "ustedes", "ellos", "ellas", "usted"],
        past_auxiliaries: &["he", "has", "ha", "hemos", "habeis", "han", "habia", "ya"],
        blocked_after: &["moviles"],
        stopwords: &[
            "rgpd", "yo", "y", "los", "mis", "de", "el", "la", "que", "por", "favor", "mi",
            "datos", "segun", "quiero", "una", "para", "con", "del", "lo", "sobre",
        ],
    },
};
